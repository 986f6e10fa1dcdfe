"""Billing business rules: every write goes through a function here."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import gateway
from billing.errors import Conflict, InvalidRequest, PaymentDeclined
from billing.logging_utils import log_billing_event, log_performance_metric
from billing.models import Payment, Plan, Refund, Subscription

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


def subscription_create(*, user, plan: Plan) -> Subscription:
    if not plan.active:
        msg = f"Plan {plan.code!r} is not active."
        raise InvalidRequest(msg, field="plan")
    try:
        with transaction.atomic():
            subscription = Subscription.objects.create(user=user, plan=plan)
    except IntegrityError:
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


def _payment_matches(payment: Payment, amount: Decimal, currency: str, method: str) -> bool:
    return (payment.amount, payment.currency, payment.payment_method) == (amount, currency, method)


def payment_create(
    *,
    user,
    amount: Decimal,
    currency: str,
    payment_method: str,
    description: str = "",
    idempotency_key: str | None = None,
) -> tuple[Payment, bool]:
    """Charge the user; return (payment, created). A known idempotency key replays the original."""
    if idempotency_key:
        existing = Payment.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            if not _payment_matches(existing, amount, currency, payment_method):
                msg = "This Idempotency-Key was already used with a different payment."
                raise Conflict(msg, field="Idempotency-Key")
            return existing, False
    started = time.monotonic()
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                user=user,
                amount=amount,
                currency=currency,
                description=description,
                payment_method=payment_method,
                idempotency_key=idempotency_key or None,
            )
    except IntegrityError:
        # A concurrent retry with the same key won the race: replay its payment.
        existing = Payment.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing, False
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


@transaction.atomic
def refund_create(*, payment: Payment, amount: Decimal | None, reason: str = "") -> Refund:
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if payment.status != Payment.Status.SUCCEEDED:
        msg = f"Only succeeded payments can be refunded; payment {payment.id} is {payment.status}."
        raise Conflict(msg)
    remaining = payment.refundable_amount
    if amount is None:
        amount = remaining
    if remaining <= 0:
        msg = f"Payment {payment.id} is already fully refunded."
        raise Conflict(msg)
    if amount > remaining:
        msg = f"Refund amount {amount} exceeds the refundable amount {remaining}."
        raise InvalidRequest(msg, field="amount")
    gateway.refund(charge_reference=payment.gateway_reference, amount=amount)
    refund = Refund.objects.create(payment=payment, amount=amount, reason=reason)
    payment.amount_refunded += amount
    payment.save(update_fields=["amount_refunded"])
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
