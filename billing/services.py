"""Billing business rules: every write goes through a function here."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import gateway
from billing.exceptions import Conflict, IdempotencyKeyInUse, InvalidRequest, PaymentDeclined
from billing.logging_utils import log_billing_event, log_performance_metric
from billing.models import Payment, Plan, Refund, Subscription
from observability import get_request_id

EMPTY = "-"  # how the logs write "none" (observability's neutral value)

logger = logging.getLogger("billing.models")


def plan_create(
    *, name: str, code: str, amount: Decimal, currency: str, interval: str, active: bool = True
) -> Plan:
    if Plan.objects.filter(code=code).exists():
        msg = f"A plan with code {code!r} already exists."
        raise Conflict(msg, field="code")
    plan = Plan.objects.create(
        name=name, code=code, amount=amount, currency=currency, interval=interval, active=active
    )
    logger.info("Plan %s created", plan.code, extra={"plan_id": plan.id})
    return plan


def _request_id() -> str:
    """The current request's ID, stored on the rows it writes ("" outside a request)."""
    request_id = get_request_id()
    return "" if request_id == EMPTY else request_id


def subscription_create(*, user, plan: Plan) -> Subscription:
    """Subscribe `user` to `plan`; a second active subscription to it is a 409.

    The partial unique constraint (one active subscription per user and plan) decides
    between concurrent requests: the loser's INSERT fails, and it names the winner.
    """
    if not plan.active:
        msg = f"Plan {plan.code!r} is not active."
        raise InvalidRequest(msg, field="plan")
    try:
        with transaction.atomic():
            subscription = Subscription.objects.create(
                user=user, plan=plan, request_id=_request_id()
            )
    except IntegrityError:
        winner = Subscription.objects.filter(
            user=user, plan=plan, status=Subscription.Status.ACTIVE
        ).first()
        log_billing_event(
            event_type="subscription_duplicate_refused",
            user_id=user.id,
            details={
                "subscription_id": winner.id if winner else EMPTY,
                "plan_id": plan.id,
                "winning_request_id": (winner.request_id if winner else "") or EMPTY,
            },
        )
        msg = f"You already have an active subscription to plan {plan.code!r}."
        raise Conflict(msg, field="plan") from None
    log_billing_event(
        event_type="subscription_created",
        user_id=user.id,
        details={
            "subscription_id": subscription.id,
            "plan_id": plan.id,
            "amount": str(plan.amount),
            "currency": plan.currency,
        },
    )
    return subscription


def subscription_cancel(*, subscription: Subscription) -> Subscription:
    """Cancel an active subscription; the row lock makes a concurrent second cancel a 409."""
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("plan")
            .get(pk=subscription.pk)
        )
        if subscription.status != Subscription.Status.ACTIVE:
            msg = f"Subscription {subscription.id} is already cancelled."
            raise Conflict(msg)
        subscription.status = Subscription.Status.CANCELLED
        subscription.cancelled_at = timezone.now()
        subscription.save(update_fields=["status", "cancelled_at"])
    log_billing_event(
        event_type="subscription_cancelled",
        user_id=subscription.user_id,
        details={"subscription_id": subscription.id, "plan_id": subscription.plan_id},
    )
    return subscription


def _payment_replay(
    existing: Payment, *, amount: Decimal, currency: str, payment_method: str
) -> Payment:
    """Answer a request whose Idempotency-Key already has a payment: replay it, or refuse.

    Replayed: the same payment (200), or the same decline (402). Still pending, because its
    request is talking to the gateway: 409 with Retry-After, never a second charge.
    """
    if (existing.amount, existing.currency, existing.payment_method) != (
        amount,
        currency,
        payment_method,
    ):
        msg = "This Idempotency-Key was already used with a different payment."
        raise Conflict(msg, field="Idempotency-Key")
    details = {"payment_id": existing.id, "winning_request_id": existing.request_id or EMPTY}
    if existing.status == Payment.Status.PENDING:
        log_billing_event(
            event_type="payment_in_flight_refused", user_id=existing.user_id, details=details
        )
        msg = (
            f"A request with this Idempotency-Key is still being processed (payment "
            f"{existing.id}); retry it shortly to get its result."
        )
        raise IdempotencyKeyInUse(msg, field="Idempotency-Key")
    log_billing_event(event_type="payment_replayed", user_id=existing.user_id, details=details)
    if existing.status == Payment.Status.FAILED:
        raise PaymentDeclined(
            gateway.failure_message(existing.failure_code),
            data={"payment": existing, "replayed": True},
        )
    return existing


def payment_create(
    *,
    user,
    amount: Decimal,
    currency: str,
    payment_method: str,
    description: str = "",
    idempotency_key: str | None = None,
) -> tuple[Payment, bool]:
    """Charge the user; return (payment, created). A known idempotency key replays the original.

    Exactly one charge per key, whatever the concurrency: the payment is committed as
    pending before the gateway is called, and the unique (user, idempotency_key) constraint
    lets one INSERT win. Every other request finds that row and replays or refuses it.
    """
    key = idempotency_key or None
    if key:
        existing = Payment.objects.filter(user=user, idempotency_key=key).first()
        if existing is not None:
            replayed = _payment_replay(
                existing, amount=amount, currency=currency, payment_method=payment_method
            )
            return replayed, False
    started = time.monotonic()
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                user=user,
                amount=amount,
                currency=currency,
                description=description,
                payment_method=payment_method,
                idempotency_key=key,
                request_id=_request_id(),
            )
    except IntegrityError:
        if key is None:
            raise
        # A concurrent request with the same key inserted first (the constraint made this
        # INSERT wait for its commit): its row is there now.
        existing = Payment.objects.get(user=user, idempotency_key=key)
        replayed = _payment_replay(
            existing, amount=amount, currency=currency, payment_method=payment_method
        )
        return replayed, False
    details = {
        "payment_id": payment.id,
        "amount": str(amount),
        "currency": currency,
    }
    log_billing_event(event_type="payment_created", user_id=user.id, details=details)

    result = gateway.charge(amount=amount, currency=currency, payment_method=payment_method)
    payment.gateway_reference = result.reference
    if result.succeeded:
        payment.status = Payment.Status.SUCCEEDED
    else:
        payment.status = Payment.Status.FAILED
        payment.failure_code = result.failure_code
    payment.save(update_fields=["gateway_reference", "status", "failure_code"])
    log_performance_metric(
        metric_name="payment_processing",
        value=round(time.monotonic() - started, 6),
        unit="seconds",
        details={"payment_id": payment.id, "status": payment.status},
    )
    if not result.succeeded:
        log_billing_event(
            event_type="payment_failed",
            user_id=user.id,
            details={**details, "failure_code": result.failure_code},
        )
        raise PaymentDeclined(result.failure_message, data={"payment": payment})
    log_billing_event(event_type="payment_succeeded", user_id=user.id, details=details)
    return payment, True


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
            "winning_refund_id": last.id if last else EMPTY,
            "winning_request_id": (last.request_id if last else "") or EMPTY,
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
                payment=payment, amount=amount, reason=reason, request_id=_request_id()
            )
            # Compare-and-set, with the exact Decimal sum (SQLite would add floats):
            # nothing can have changed under the lock, and if it did, no update is lost.
            changed = Payment.objects.filter(
                pk=payment.pk, amount_refunded=payment.amount_refunded
            ).update(amount_refunded=payment.amount_refunded + amount)
            if changed != 1:
                raise _refund_raced(payment, amount)
            gateway.refund(charge_reference=payment.gateway_reference, amount=amount)
    except IntegrityError:  # the CHECK constraint
        raise _refund_raced(payment, amount) from None
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
