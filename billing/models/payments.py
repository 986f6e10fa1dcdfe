"""Payments, their refunds, and the sandbox gateway's own record of its charges.

Money is Decimal, never float.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models.references import random_reference, request_id_field


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
