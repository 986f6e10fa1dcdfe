"""Settling a payment: the gateway's outcome recorded once, by whoever gets there first.

The request that took the payment settles it when the gateway answers; past its lease, a
retry or `manage.py payment_reconcile` asks the gateway instead (payment_reconcile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import gateway, selectors
from billing.exceptions import GatewayUnavailable
from billing.logging_utils import log_billing_event
from billing.models import Payment
from billing.webhooks.events import event_record


def payment_settle(payment: Payment, result: gateway.ChargeResult) -> bool:
    """Record the gateway's outcome once: compare-and-set from pending; False if already done.

    A request whose gateway call outlived its lease and the retry that reconciled it both get
    here with the same outcome (one gateway key, one charge): only the first write counts.
    """
    status = Payment.Status.SUCCEEDED if result.succeeded else Payment.Status.FAILED
    with transaction.atomic():  # the event is written with the outcome, or neither is
        changed = Payment.objects.filter(pk=payment.pk, status=Payment.Status.PENDING).update(
            status=status, gateway_reference=result.reference, failure_code=result.failure_code
        )
        payment.refresh_from_db(
            fields=["status", "gateway_reference", "failure_code", "attempted_at"]
        )
        if changed == 1:
            event_record(event_type=f"payment.{status}", data=_payment_data(payment))
    return changed == 1


def _payment_data(payment: Payment) -> dict[str, Any]:
    return {
        "object": "payment",
        "id": payment.id,
        "amount": str(payment.amount),
        "currency": payment.currency,
        "status": payment.status,
        "failure_code": payment.failure_code or None,
        "user_id": payment.user_id,
    }


def payment_settled_log(payment: Payment) -> None:
    """payment_succeeded or payment_failed: once per payment, by whoever settled it."""
    details = {
        "payment_id": payment.id,
        "amount": str(payment.amount),
        "currency": payment.currency,
    }
    if payment.status == Payment.Status.SUCCEEDED:
        log_billing_event(event_type="payment_succeeded", user_id=payment.user_id, details=details)
    else:
        log_billing_event(
            event_type="payment_failed",
            user_id=payment.user_id,
            details={**details, "failure_code": payment.failure_code},
        )


def payment_gateway_unavailable(
    payment: Payment, error: gateway.GatewayError
) -> GatewayUnavailable:
    """The 503 for a gateway that gave no answer: the payment stays pending, to be reconciled."""
    lease = math.ceil(settings.BILLING_PENDING_LEASE)
    log_billing_event(
        event_type="payment_gateway_unavailable",
        user_id=payment.user_id,
        details={"payment_id": payment.id, "error": type(error).__name__},
    )
    retry = "retry with the same Idempotency-Key" if payment.idempotency_key else "look it up"
    msg = (
        f"The payment gateway did not answer: payment {payment.id} is pending until it is "
        f"reconciled with the gateway; {retry} after {lease} s to get its outcome."
    )
    exc = GatewayUnavailable(msg, data={"payment": payment})
    exc.retry_after = lease
    return exc


@dataclass(frozen=True)
class Reconciliation:
    """What payment_reconcile did: `gateway` is how this call settled it, "" if it did not."""

    payment: Payment
    gateway: str = ""  # "had_charged" | "charged_now" | ""


def payment_reconcile(*, payment: Payment, trigger: str = "sweep") -> Reconciliation:
    """Settle a pending payment whose lease ran out with what the gateway says happened.

    The request that committed the payment `pending` may have died before or after the
    gateway charged (a killed worker, a lost answer). Its lease is taken over by a
    compare-and-set, so concurrent reconcilers settle it once; the gateway is asked about
    the payment's own key: a charge it made is recorded, otherwise it is charged now under
    that key, exactly once whoever else sends it. Not stale (its request or another
    reconciler holds it) or already settled: returned as it stands, untouched. A gateway
    that does not answer raises GatewayError; the payment stays pending for a lease more.
    """
    now = timezone.now()
    pending_since = payment.attempted_at
    claimed = Payment.objects.filter(
        pk=payment.pk,
        status=Payment.Status.PENDING,
        attempted_at__lte=selectors.payment_lease_cutoff(),
    ).update(attempted_at=now)
    payment.refresh_from_db()
    if not claimed:
        return Reconciliation(payment)
    result = gateway.charge_lookup(idempotency_key=payment.gateway_idempotency_key)
    how = "had_charged"
    if result is None:
        result = gateway.charge(
            idempotency_key=payment.gateway_idempotency_key,
            amount=payment.amount,
            currency=payment.currency,
            payment_method=payment.payment_method,
        )
        how = "charged_now"
    if not payment_settle(payment, result):  # its own request answered meanwhile
        return Reconciliation(payment)
    log_billing_event(
        event_type="payment_reconciled",
        user_id=payment.user_id,
        details={
            "payment_id": payment.id,
            "payment_status": payment.status,
            "gateway": how,
            "trigger": trigger,
            "gateway_reference": payment.gateway_reference,
            "original_request_id": payment.request_id or None,
            "pending_seconds": round((now - pending_since).total_seconds(), 3),
        },
    )
    payment_settled_log(payment)
    return Reconciliation(payment, how)
