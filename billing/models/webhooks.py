"""Webhooks: endpoints, the events (a transactional outbox) and every delivery attempt."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models.references import random_reference, request_id_field

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
