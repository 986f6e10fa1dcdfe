"""A sandbox payment gateway with deterministic outcomes, keyed by the payment method.

pm_card_visa / pm_card_mastercard / pm_card_amex succeed; pm_card_declined and
pm_card_insufficient_funds are declined. Nothing leaves the process.

`SANDBOX_GATEWAY_DELAY` (seconds, default 0) makes every charge take that long, as a real
gateway's round trip does: the race tests use it to keep requests overlapping.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured

SUCCEEDING_METHODS = frozenset({"pm_card_visa", "pm_card_mastercard", "pm_card_amex"})
DECLINES = {
    "pm_card_declined": ("card_declined", "The card was declined."),
    "pm_card_insufficient_funds": ("insufficient_funds", "The card has insufficient funds."),
}
PAYMENT_METHODS = tuple(sorted(SUCCEEDING_METHODS | DECLINES.keys()))
FAILURE_MESSAGES = dict(DECLINES.values())


def _delay_from_env() -> float:
    raw = os.environ.get("SANDBOX_GATEWAY_DELAY", "").strip() or "0"
    try:
        delay = float(raw)
    except ValueError:
        delay = -1.0
    if not 0 <= delay <= 60:
        msg = f"SANDBOX_GATEWAY_DELAY must be a number of seconds from 0 to 60, got {raw!r}"
        raise ImproperlyConfigured(msg)
    return delay


DELAY = _delay_from_env()


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str
    failure_code: str = ""
    failure_message: str = ""


def failure_message(failure_code: str) -> str:
    """The decline message the gateway gave for `failure_code`."""
    return FAILURE_MESSAGES.get(failure_code, "The card was declined.")


def charge(*, amount: Decimal, currency: str, payment_method: str) -> ChargeResult:
    """Charge `amount` to the sandbox `payment_method`; the outcome depends only on the method."""
    if payment_method not in DECLINES and payment_method not in SUCCEEDING_METHODS:
        msg = f"Unknown sandbox payment method {payment_method!r}"
        raise ValueError(msg)
    if DELAY:
        time.sleep(DELAY)
    reference = f"ch_{uuid.uuid4().hex[:24]}"
    if payment_method in DECLINES:
        code, message = DECLINES[payment_method]
        return ChargeResult(False, reference, code, message)
    return ChargeResult(True, reference)


def refund(*, charge_reference: str, amount: Decimal) -> str:
    """Refund part of a sandbox charge and return the refund reference."""
    return f"re_{uuid.uuid4().hex[:24]}"
