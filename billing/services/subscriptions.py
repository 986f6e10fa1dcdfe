"""Subscriptions: one active subscription per user and plan, cancelled once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.exceptions import Conflict, InvalidRequest
from billing.logging_utils import log_billing_event
from billing.models import Plan, Subscription
from billing.services.request_ids import current_request_id
from billing.webhooks.events import event_record

if TYPE_CHECKING:
    from django.contrib.auth.models import User  # AUTH_USER_MODEL, as django-stubs reads it


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
                user=user, plan=plan, request_id=current_request_id()
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


def _subscription_data(subscription: Subscription) -> dict[str, Any]:
    return {
        "object": "subscription",
        "id": subscription.id,
        "plan": subscription.plan.code,
        "status": subscription.status,
        "user_id": subscription.user_id,
    }
