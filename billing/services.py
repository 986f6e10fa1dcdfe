"""Billing business rules: every write goes through a function here."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import gateway, selectors
from billing.exceptions import (
    Conflict,
    GatewayUnavailable,
    IdempotencyKeyInUse,
    InvalidRequest,
    PaymentDeclined,
)
from billing.logging_utils import log_billing_event, log_performance_metric
from billing.models import Payment, Plan, Refund, Subscription
from billing.webhooks.events import event_record
from observability import get_request_id

if TYPE_CHECKING:
    from django.contrib.auth.models import User  # AUTH_USER_MODEL, as django-stubs reads it

logger = logging.getLogger(__name__)


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
    return get_request_id(default="") or ""


def subscription_create(*, user: User, plan: Plan) -> Subscription:
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
            event_record(event_type="subscription.created", data=_subscription_data(subscription))
    except IntegrityError:
        winner = Subscription.objects.filter(
            user=user, plan=plan, status=Subscription.Status.ACTIVE
        ).first()
        log_billing_event(
            event_type="subscription_duplicate_refused",
            user_id=user.id,
            details={
                "subscription_id": winner.id if winner else None,
                "plan_id": plan.id,
                "winning_request_id": (winner.request_id or None) if winner else None,
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
        event_record(event_type="subscription.canceled", data=_subscription_data(subscription))
    log_billing_event(
        event_type="subscription_cancelled",
        user_id=subscription.user_id,
        details={"subscription_id": subscription.id, "plan_id": subscription.plan_id},
    )
    return subscription


PAYMENT_BODY_FIELDS = ("amount", "currency", "description", "payment_method")


class PaymentBody(TypedDict):
    """A payment request's validated body (PAYMENT_BODY_FIELDS)."""

    amount: Decimal
    currency: str
    description: str
    payment_method: str


CENT = Decimal("0.01")


def _payment_request_hash(
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


def _payment_stored_hash(payment: Payment) -> str:
    """The hash a payment was created with; rows older than the hash: from its stored body."""
    if payment.request_hash:
        return payment.request_hash
    return _payment_request_hash(**{name: getattr(payment, name) for name in PAYMENT_BODY_FIELDS})


def _payment_settle(payment: Payment, result: gateway.ChargeResult) -> bool:
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


def _subscription_data(subscription: Subscription) -> dict[str, Any]:
    return {
        "object": "subscription",
        "id": subscription.id,
        "plan": subscription.plan.code,
        "status": subscription.status,
        "user_id": subscription.user_id,
    }


def _payment_settled_log(payment: Payment) -> None:
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


def _payment_gateway_unavailable(
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
    if not _payment_settle(payment, result):  # its own request answered meanwhile
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
    _payment_settled_log(payment)
    return Reconciliation(payment, how)


def _payment_replay(existing: Payment, *, request_hash: str, body: PaymentBody) -> Payment:
    """Answer a request whose Idempotency-Key already has a payment: replay it, or refuse.

    Another body under the key: 409 naming the key (and the fields that differ, never their
    values). Replayed: the same payment (200), or the same decline (402). Still pending while
    its request holds the lease: 409 with Retry-After, never a second charge; pending past
    the lease: reconciled with the gateway here, then replayed.
    """
    if _payment_stored_hash(existing) != request_hash:
        differing = [
            name for name in PAYMENT_BODY_FIELDS if getattr(existing, name) != body.get(name)
        ]
        which = f" ({', '.join(differing)} differ)" if differing else ""
        msg = (
            f"This Idempotency-Key was already used with a different request body{which}; "
            "send a new key for a new payment."
        )
        raise Conflict(msg, field="Idempotency-Key")
    details = {"payment_id": existing.id, "winning_request_id": existing.request_id or None}
    stale = existing.attempted_at <= selectors.payment_lease_cutoff()
    if existing.status == Payment.Status.PENDING and stale:
        try:
            existing = payment_reconcile(payment=existing, trigger="retry").payment
        except gateway.GatewayError as error:
            raise _payment_gateway_unavailable(existing, error) from None
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
    user: User,
    amount: Decimal,
    currency: str,
    payment_method: str,
    description: str = "",
    idempotency_key: str | None = None,
) -> tuple[Payment, bool]:
    """Charge the user; return (payment, created). A known idempotency key replays the original.

    Exactly one charge per key, whatever the concurrency and whoever dies: the payment is
    committed as pending before the gateway is called, and the unique (user, idempotency_key)
    constraint lets one INSERT win. Every other request finds that row and replays, refuses
    or (past the lease of a request that never answered) reconciles it with the gateway.
    The gateway is always called with the payment's own key, so it charges at most once.
    Call it outside any transaction: the pending row must be committed before the charge.
    """
    key = idempotency_key or None
    body: PaymentBody = {
        "amount": amount,
        "currency": currency,
        "description": description,
        "payment_method": payment_method,
    }
    request_hash = _payment_request_hash(**body)
    if key:
        existing = Payment.objects.filter(user=user, idempotency_key=key).first()
        if existing is not None:
            return _payment_replay(existing, request_hash=request_hash, body=body), False
    started = time.monotonic()
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                user=user,
                **body,
                idempotency_key=key,
                request_hash=request_hash,
                request_id=_request_id(),
            )
    except IntegrityError:
        if key is None:
            raise
        # A concurrent request with the same key inserted first (the constraint made this
        # INSERT wait for its commit): its row is there now.
        existing = Payment.objects.get(user=user, idempotency_key=key)
        return _payment_replay(existing, request_hash=request_hash, body=body), False
    log_billing_event(
        event_type="payment_created",
        user_id=user.id,
        details={"payment_id": payment.id, "amount": str(amount), "currency": currency},
    )
    try:
        result = gateway.charge(
            idempotency_key=payment.gateway_idempotency_key,
            amount=amount,
            currency=currency,
            payment_method=payment_method,
        )
    except gateway.GatewayError as error:
        raise _payment_gateway_unavailable(payment, error) from None
    settled_here = _payment_settle(payment, result)
    log_performance_metric(
        metric_name="payment_processing",
        value=round(time.monotonic() - started, 6),
        unit="seconds",
        details={"payment_id": payment.id, "payment_status": payment.status},
    )
    if settled_here:  # else a retry past the lease reconciled it (the same charge) and logged
        _payment_settled_log(payment)
    if payment.status == Payment.Status.FAILED:
        raise PaymentDeclined(
            gateway.failure_message(payment.failure_code), data={"payment": payment}
        )
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
                payment=payment, amount=amount, reason=reason, request_id=_request_id()
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
