"""What makes two payment requests the same: the canonical validated body, and its hash.

A reused Idempotency-Key with another body is refused, however its amount is written.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import TypedDict

from billing.models import Payment

PAYMENT_BODY_FIELDS = ("amount", "currency", "description", "payment_method")


class PaymentBody(TypedDict):
    """A payment request's validated body (PAYMENT_BODY_FIELDS)."""

    amount: Decimal
    currency: str
    description: str
    payment_method: str


CENT = Decimal("0.01")


def payment_request_hash(
    *, amount: Decimal, currency: str, description: str, payment_method: str
) -> str:
    """SHA-256 of the canonical validated body: one amount however written (50, 50.00)."""
    body = {
        "amount": format(Decimal(amount).quantize(CENT), "f"),
        "currency": currency,
        "description": description,
        "payment_method": payment_method,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def payment_stored_hash(payment: Payment) -> str:
    """The hash a payment was created with; rows older than the hash: from its stored body."""
    if payment.request_hash:
        return payment.request_hash
    return payment_request_hash(**{name: getattr(payment, name) for name in PAYMENT_BODY_FIELDS})
