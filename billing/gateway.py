"""A sandbox payment gateway with deterministic outcomes, keyed by the payment method.

pm_card_visa / pm_card_mastercard / pm_card_amex succeed; pm_card_declined and
pm_card_insufficient_funds are declined. Nothing leaves the process.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

SUCCEEDING_METHODS = frozenset({"pm_card_visa", "pm_card_mastercard", "pm_card_amex"})
DECLINES = {
    "pm_card_declined": ("card_declined", "The card was declined."),
    "pm_card_insufficient_funds": ("insufficient_funds", "The card has insufficient funds."),
}
PAYMENT_METHODS = tuple(sorted(SUCCEEDING_METHODS | DECLINES.keys()))


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str
    failure_code: str = ""
    failure_message: str = ""


def charge(*, amount: Decimal, currency: str, payment_method: str) -> ChargeResult:
    """Charge `amount` to the sandbox `payment_method`; the outcome depends only on the method."""
    reference = f"ch_{uuid.uuid4().hex[:24]}"
    if payment_method in DECLINES:
        code, message = DECLINES[payment_method]
        return ChargeResult(False, reference, code, message)
    if payment_method not in SUCCEEDING_METHODS:
        msg = f"Unknown sandbox payment method {payment_method!r}"
        raise ValueError(msg)
    return ChargeResult(True, reference)


def refund(*, charge_reference: str, amount: Decimal) -> str:
    """Refund part of a sandbox charge and return the refund reference."""
    return f"re_{uuid.uuid4().hex[:24]}"
