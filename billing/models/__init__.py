"""Billing data: plans, subscriptions, payments and refunds. Money is Decimal, never float.

One module a job (subscriptions, payments, webhooks, the references rows are stamped
with); every name is re-exported here, where the migrations and callers find it
(`billing.models.Payment`, `billing.models.webhook_secret_new`).
"""

from __future__ import annotations

# Plans and subscriptions first: Django registers the models in import order, kept as it was.
from billing.models.subscriptions import Plan, Subscription

# isort: split
from billing.models.payments import Payment, Refund, SandboxCharge, gateway_idempotency_key_new
from billing.models.references import (
    CARD_LIKE_RUN,
    REQUEST_ID_MAX_LENGTH,
    random_reference,
    request_id_field,
)
from billing.models.webhooks import (
    WEBHOOK_EVENT_TYPES,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookOutbox,
    webhook_event_id_new,
    webhook_secret_new,
)

__all__ = [
    "CARD_LIKE_RUN",
    "REQUEST_ID_MAX_LENGTH",
    "WEBHOOK_EVENT_TYPES",
    "Payment",
    "Plan",
    "Refund",
    "SandboxCharge",
    "Subscription",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookOutbox",
    "gateway_idempotency_key_new",
    "random_reference",
    "request_id_field",
    "webhook_event_id_new",
    "webhook_secret_new",
]
