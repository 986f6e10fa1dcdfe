"""A sandbox payment gateway with deterministic outcomes, keyed by the payment method.

pm_card_visa / pm_card_mastercard / pm_card_amex succeed; pm_card_declined and
pm_card_insufficient_funds are declined. Nothing leaves the process.

Like a real gateway (Stripe's `Idempotency-Key`), it answers by idempotency key: a charge
with a key it knows returns the original charge instead of charging again, the same key with
other parameters is refused, and `charge_lookup` tells whether a charge was made under a key.
Its memory is its own table, `SandboxCharge`, the stand-in for the provider's side: every
worker process shares it and it outlives a killed one. Each charge commits in its own
transaction, as the provider's does whatever happens to the caller.

`SANDBOX_GATEWAY_DELAY` (seconds, default 0) makes every call take that long, as a network
round trip does: the request reaches the provider half-way through (a charge is made then),
the answer arrives at the end. The race tests use it to keep requests overlapping, and the
worker-kill tests to kill a worker before or after the charge. `BILLING_GATEWAY_TIMEOUT`
(a Django setting) is the client's timeout: a call whose round trip would take longer
raises `GatewayTimeout` once it has waited that long, with the charge made if the request
got there (the outcome the caller cannot know; reconciliation asks later).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction

from billing.models import SandboxCharge, random_reference
from observability import span

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


class GatewayError(Exception):
    """The gateway gave no usable answer: whether it charged is unknown until asked again."""


class GatewayTimeout(GatewayError):
    """No answer within BILLING_GATEWAY_TIMEOUT seconds."""


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str
    failure_code: str = ""
    failure_message: str = ""


def failure_message(failure_code: str) -> str:
    """The decline message the gateway gave for `failure_code`."""
    return FAILURE_MESSAGES.get(failure_code, "The card was declined.")


def _travel(seconds: float, *, left: float) -> float:
    """One leg of the round trip; raise GatewayTimeout when the client stops waiting first."""
    if seconds > left:
        time.sleep(left)
        timeout = settings.BILLING_GATEWAY_TIMEOUT
        msg = f"The payment gateway did not answer within {timeout} s."
        raise GatewayTimeout(msg)
    if seconds:
        time.sleep(seconds)
    return left - seconds


def _result(charge: SandboxCharge) -> ChargeResult:
    if charge.succeeded:
        return ChargeResult(True, charge.reference)
    return ChargeResult(
        False, charge.reference, charge.failure_code, failure_message(charge.failure_code)
    )


def _charge_record(
    *, idempotency_key: str, amount: Decimal, currency: str, payment_method: str
) -> ChargeResult:
    """The provider's side: make the charge under `idempotency_key`, or return the one it made."""
    code = DECLINES[payment_method][0] if payment_method in DECLINES else ""
    try:
        with transaction.atomic():
            charge = SandboxCharge.objects.create(
                idempotency_key=idempotency_key,
                reference=random_reference("ch_", 12),
                amount=amount,
                currency=currency,
                payment_method=payment_method,
                succeeded=not code,
                failure_code=code,
            )
    except IntegrityError:
        # The key is known (the unique constraint made a concurrent INSERT wait for the
        # first one's commit): answer with the original charge, as Stripe does.
        charge = SandboxCharge.objects.get(idempotency_key=idempotency_key)
        if (charge.amount, charge.currency, charge.payment_method) != (
            amount,
            currency,
            payment_method,
        ):
            msg = f"Idempotency key {idempotency_key!r} was already used with different parameters."
            raise GatewayError(msg) from None
    return _result(charge)


def charge(
    *, idempotency_key: str, amount: Decimal, currency: str, payment_method: str
) -> ChargeResult:
    """Charge `amount` to the sandbox `payment_method`, at most once per `idempotency_key`.

    The outcome depends only on the method; a key already charged returns its charge.
    """
    if payment_method not in DECLINES and payment_method not in SUCCEEDING_METHODS:
        msg = f"Unknown sandbox payment method {payment_method!r}"
        raise ValueError(msg)
    with span("gateway.charge", payment_method=payment_method, currency=currency):
        left = _travel(DELAY / 2, left=settings.BILLING_GATEWAY_TIMEOUT)
        result = _charge_record(
            idempotency_key=idempotency_key,
            amount=amount,
            currency=currency,
            payment_method=payment_method,
        )
        _travel(DELAY / 2, left=left)
    return result


def charge_lookup(*, idempotency_key: str) -> ChargeResult | None:
    """The charge made under `idempotency_key`, or None if the gateway never made one."""
    with span("gateway.charge_lookup"):
        left = _travel(DELAY / 2, left=settings.BILLING_GATEWAY_TIMEOUT)
        charge = SandboxCharge.objects.filter(idempotency_key=idempotency_key).first()
        _travel(DELAY / 2, left=left)
    return None if charge is None else _result(charge)


def refund(*, charge_reference: str, amount: Decimal) -> str:
    """Refund part of a sandbox charge and return the refund reference."""
    return random_reference("re_", 12)
