"""What never reaches a log raw: card numbers, credentials, secret values, control characters."""
