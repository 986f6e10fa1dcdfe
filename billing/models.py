"""Billing data: plans, subscriptions, payments and refunds. Money is Decimal, never float."""

from __future__ import annotations

import re
import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

# The X-Request-ID of the request that wrote a row: a request that loses a race to this row
# names it in its log event, and `manage.py logtrace <id>` tells the winner's story.
REQUEST_ID_MAX_LENGTH = 128


def request_id_field() -> models.CharField[str, str]:
    return models.CharField(max_length=REQUEST_ID_MAX_LENGTH, blank=True, default="")


class Plan(models.Model):
    class Interval(models.TextChoices):
        MONTH = "month"
        YEAR = "year"

    name = models.CharField(max_length=100)
    code = models.SlugField(max_length=50, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    interval = models.CharField(max_length=5, choices=Interval.choices)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["amount", "code"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="plan_amount_gte_0"),
        ]

    def __str__(self) -> str:
        return self.code


class Subscription(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        CANCELLED = "cancelled"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriptions"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    request_id = request_id_field()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "plan"],
                condition=Q(status="active"),
                name="one_active_subscription_per_user_and_plan",
            ),
        ]

    def __str__(self) -> str:
        return f"subscription {self.pk} ({self.status})"


# 13 digits in a row is the shortest card number: a value we make and log never holds one.
CARD_LIKE_RUN = re.compile(r"[0-9]{13}")


def random_reference(prefix: str, nbytes: int) -> str:
    """`prefix` and `nbytes` random bytes in hex, never reading as a card number (THREATS 1)."""
    while True:
        token = secrets.token_hex(nbytes)
        if not CARD_LIKE_RUN.search(token):
            return prefix + token


def gateway_idempotency_key_new() -> str:
    """A payment's own key at the gateway: random, so a reset database never reuses one."""
    return random_reference("pay_", 16)


class Payment(models.Model):
    """A charge, committed `pending` before the gateway is called and settled once after.

    `gateway_idempotency_key` is the key every call to the gateway about this payment sends
    (the first charge, a reconciliation's lookup or charge): the gateway answers a key it
    knows with its original charge, so a payment is charged at most once, whoever asks.
    `attempted_at` is when a request last began talking to the gateway about it: that
    request holds the payment for BILLING_PENDING_LEASE seconds; after that a retry or
    `manage.py payment_reconcile` may settle it (billing.services.payment_reconcile).
    `request_hash` is the SHA-256 of the canonical validated request body: a reused
    Idempotency-Key with another body is refused.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payments"
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=500, blank=True)
    payment_method = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    failure_code = models.CharField(max_length=50, blank=True)
    gateway_reference = models.CharField(max_length=64, blank=True)
    amount_refunded = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_hash = models.CharField(max_length=64, blank=True, default="")
    gateway_idempotency_key = models.CharField(
        max_length=64, unique=True, default=gateway_idempotency_key_new, editable=False
    )
    attempted_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    request_id = request_id_field()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sweep's query: pending payments whose lease ran out.
            models.Index(
                fields=["attempted_at"],
                condition=Q(status="pending"),
                name="payment_pending_attempted_at",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=models.F("amount")),
                name="payment_refunded_within_amount",
            ),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="payment_idempotency_key_unique_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"payment {self.pk} {self.amount} {self.currency} ({self.status})"

    @property
    def refundable_amount(self) -> Decimal:
        return self.amount - self.amount_refunded


class Refund(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    request_id = request_id_field()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_gt_0"),
        ]

    def __str__(self) -> str:
        return f"refund {self.pk} of payment {self.payment_id}"


class SandboxCharge(models.Model):
    """The sandbox gateway's own memory of the charges it made: the stand-in for the provider.

    A real gateway keeps this on its side and answers a known idempotency key with the
    original charge; the sandbox keeps it in this table, so every worker process sees it and
    it outlives a killed one. Only billing.gateway reads or writes it; the API never does.
    """

    idempotency_key = models.CharField(max_length=64, unique=True)
    reference = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    payment_method = models.CharField(max_length=64)
    succeeded = models.BooleanField()
    failure_code = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"sandbox charge {self.reference} ({self.idempotency_key})"


# --- Webhooks: endpoints, the events (a transactional outbox) and every delivery attempt ---

WEBHOOK_EVENT_TYPES = (
    "payment.succeeded",
    "payment.failed",
    "refund.created",
    "subscription.created",
    "subscription.canceled",
)


def webhook_secret_new() -> str:
    return random_reference("whsec_", 24)


def webhook_event_id_new() -> str:
    return random_reference("evt_", 16)


class WebhookEndpoint(models.Model):
    """Where a merchant wants events: a URL, the secret the signatures use, the types wanted.

    `event_types` empty means every type. A second secret (`previous_secret`) is kept during
    a rotation: deliveries are signed with both until it is cleared.
    """

    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64, default=webhook_secret_new)
    previous_secret = models.CharField(max_length=64, blank=True, default="")
    active = models.BooleanField(default=True)
    event_types = models.JSONField(default=list, blank=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"webhook endpoint {self.pk} ({self.url})"

    def wants(self, event_type: str) -> bool:
        return self.active and (not self.event_types or event_type in self.event_types)


class WebhookEvent(models.Model):
    """One event, written in the transaction of the change it reports; its ID never changes.

    `request_id` and `traceparent` are the originating request's: every delivery of the
    event, however late and whoever publishes it (the request, a retry, the sweep), carries
    that request's story.
    """

    event_id = models.CharField(max_length=40, unique=True, default=webhook_event_id_new)
    type = models.CharField(max_length=40)
    payload = models.JSONField()
    request_id = request_id_field()
    traceparent = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WebhookOutbox(models.Model):
    """The outbox row of one event for one endpoint: the truth about its delivery.

    `attempts` counts the attempts claimed; an attempt is claimed by a compare-and-set on it,
    so a task that runs twice (a broker's redelivery, the sweep) sends an attempt once.
    `next_attempt_at` is when the next attempt is due (the sweep publishes rows past it).
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up after the last attempt

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="outbox")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="outbox")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_outbox_due",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_outbox_unique"),
        ]

    def __str__(self) -> str:
        return f"outbox {self.pk} ({self.status}, {self.attempts} attempts)"


class WebhookDelivery(models.Model):
    """One attempt to deliver an event to an endpoint; unique by (outbox row, attempt)."""

    outbox = models.ForeignKey(WebhookOutbox, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration = models.FloatField(default=0.0)
    error = models.CharField(max_length=300, blank=True)
    request_id = request_id_field()
    task_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["outbox_id", "attempt"]
        constraints = [
            models.UniqueConstraint(fields=["outbox", "attempt"], name="webhook_delivery_unique"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.outbox_id}#{self.attempt} ({self.status_code or self.error})"
