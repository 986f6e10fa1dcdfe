"""The business rules, called directly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing import services
from billing.errors import Conflict, InvalidRequest, PaymentDeclined
from billing.models import Payment, Refund

pytestmark = pytest.mark.django_db


def charge(user, amount="50.00", method="pm_card_visa", key=None):
    return services.payment_create(
        user=user,
        amount=Decimal(amount),
        currency="USD",
        payment_method=method,
        idempotency_key=key,
    )


def test_refunds_never_exceed_the_payment(user):
    payment, _ = charge(user)
    services.refund_create(payment=payment, amount=Decimal("20.00"))
    services.refund_create(payment=payment, amount=Decimal("30.00"))
    with pytest.raises(Conflict):
        services.refund_create(payment=payment, amount=Decimal("0.01"))
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("50.00")
    assert sum(r.amount for r in Refund.objects.filter(payment=payment)) == Decimal("50.00")


def test_refund_over_remaining_names_amount(user):
    payment, _ = charge(user)
    with pytest.raises(InvalidRequest) as caught:
        services.refund_create(payment=payment, amount=Decimal("50.01"))
    assert caught.value.field == "amount"


def test_declined_payment_is_stored_failed(user):
    with pytest.raises(PaymentDeclined):
        charge(user, method="pm_card_insufficient_funds")
    assert Payment.objects.get().failure_code == "insufficient_funds"


def test_idempotency_returns_same_payment_once(user):
    first, created = charge(user, key="abc")
    second, created_again = charge(user, key="abc")
    assert (created, created_again) == (True, False)
    assert first.pk == second.pk
    assert Payment.objects.count() == 1


def test_idempotency_keys_are_per_user(user, other_user):
    mine, _ = charge(user, key="same")
    theirs, created = charge(other_user, key="same")
    assert created and mine.pk != theirs.pk


def test_one_active_subscription_per_user_and_plan(user, plan):
    services.subscription_create(user=user, plan=plan)
    with pytest.raises(Conflict):
        services.subscription_create(user=user, plan=plan)


def test_resubscribe_after_cancel(user, plan):
    sub = services.subscription_create(user=user, plan=plan)
    services.subscription_cancel(subscription=sub)
    assert services.subscription_create(user=user, plan=plan).status == "active"


def test_inactive_plan_refused(user, plan):
    plan.active = False
    plan.save()
    with pytest.raises(InvalidRequest):
        services.subscription_create(user=user, plan=plan)
