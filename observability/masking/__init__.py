"""What never reaches a log: card numbers, credentials, secret values."""
