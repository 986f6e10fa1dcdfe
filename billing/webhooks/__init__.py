"""Webhooks: events written with the change they report (an outbox), signed deliveries."""
