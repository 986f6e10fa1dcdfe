"""Refunds: all or part of a succeeded payment, never more than is left."""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction

from billing import gateway
from billing.exceptions import Conflict, InvalidRequest
from billing.logging_utils import log_billing_event
from billing.models import Payment, Refund
from billing.services.request_ids import current_request_id
from billing.webhooks.events import event_record


def _refund_refused(payment: Payment, amount: Decimal, remaining: Decimal) -> None:
    """Log why a refund was refused, naming the refund (and request) that took the rest."""
    last = payment.refunds.order_by("-id").first()
    log_billing_event(
        event_type="refund_refused",
        user_id=payment.user_id,
        details={
            "payment_id": payment.id,
            "amount": str(amount),
            "refundable": str(remaining),
            "winning_refund_id": last.id if last else None,
            "winning_request_id": (last.request_id or None) if last else None,
        },
    )


def _refund_raced(payment: Payment, amount: Decimal) -> Conflict:
    """Only reachable if something bypassed the row lock: the database refused the refund."""
    _refund_refused(payment, amount, payment.refundable_amount)
    msg = f"Payment {payment.id} changed while this refund was checked; retry it."
    return Conflict(msg)


def refund_create(*, payment: Payment, amount: Decimal | None, reason: str = "") -> Refund:
    """Refund all or part of a succeeded payment, never more than is left.

    The payment row is locked (SELECT ... FOR UPDATE on PostgreSQL; on SQLite the IMMEDIATE
    transaction holds the write lock), so concurrent refunds are checked one at a time.
    The database has the last word: amount_refunded is set by a compare-and-set UPDATE
    that the CHECK constraint amount_refunded <= amount guards, in the transaction that
    adds the refund row, and before the gateway is asked.
    """
    try:
        with transaction.atomic():
            payment = Payment.objects.select_for_update().get(pk=payment.pk)
            if payment.status != Payment.Status.SUCCEEDED:
                msg = (
                    f"Only succeeded payments can be refunded; payment {payment.id} is "
                    f"{payment.status}."
                )
                raise Conflict(msg)
            remaining = payment.refundable_amount
            if amount is None:
                amount = remaining
            if remaining <= 0:
                _refund_refused(payment, amount, remaining)
                msg = f"Payment {payment.id} is already fully refunded."
                raise Conflict(msg)
            if amount > remaining:
                _refund_refused(payment, amount, remaining)
                msg = f"Refund amount {amount} exceeds the refundable amount {remaining}."
                raise InvalidRequest(msg, field="amount")
            refund = Refund.objects.create(
                payment=payment, amount=amount, reason=reason, request_id=current_request_id()
            )
            # Compare-and-set, with the exact Decimal sum (SQLite would add floats):
            # nothing can have changed under the lock, and if it did, no update is lost.
            changed = Payment.objects.filter(
                pk=payment.pk, amount_refunded=payment.amount_refunded
            ).update(amount_refunded=payment.amount_refunded + amount)
            if changed != 1:
                raise _refund_raced(payment, amount)
            # Under the lock on purpose (README, "A pending key is reconciled"): the
            # gateway's refund has no key, so outside the lock a worker killed mid-call would
            # leave a refund recorded but never sent, or sent but never recorded, and nothing
            # could ask the gateway which. Here a gateway error rolls the refund back. Moving
            # it out needs the payments' treatment: a pending row with its own gateway key.
            gateway.refund(charge_reference=payment.gateway_reference, amount=amount)
            event_record(
                event_type="refund.created",
                data={
                    "object": "refund",
                    "id": refund.id,
                    "payment_id": payment.id,
                    "amount": str(amount),
                    "currency": payment.currency,
                },
            )
    except IntegrityError:  # the CHECK constraint
        raise _refund_raced(
            payment, payment.refundable_amount if amount is None else amount
        ) from None
    log_billing_event(
        event_type="refund_created",
        user_id=payment.user_id,
        details={
            "refund_id": refund.id,
            "payment_id": payment.id,
            "amount": str(amount),
            "currency": payment.currency,
        },
    )
    return refund
