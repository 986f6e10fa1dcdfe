"""The business rules, called directly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing import services
from billing.exceptions import Conflict, IdempotencyKeyInUse, InvalidRequest, PaymentDeclined
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


# --- Races, decided by the database, and the events that name the winner -----------------


def events(logs, event_type: str) -> list:
    from observability.logtrace import parse_line

    records = (parse_line(line) for line in logs.lines("general"))
    return [r for r in records if r is not None and r.fields.get("event_type") == event_type]


def test_rows_carry_the_request_id_that_wrote_them(user, plan):
    from observability import request_context

    with request_context("req-pay"):
        payment, _ = charge(user)
    with request_context("req-refund"):
        refund = services.refund_create(payment=payment, amount=Decimal("1.00"))
    with request_context("req-sub"):
        subscription = services.subscription_create(user=user, plan=plan)
    assert (payment.request_id, refund.request_id, subscription.request_id) == (
        "req-pay",
        "req-refund",
        "req-sub",
    )
    assert charge(user, key="outside")[0].request_id == ""  # no request, no ID


def test_pending_payment_with_the_same_key_is_refused_not_charged_again(user, logs):
    """The winner of the key is still at the gateway: 409, never a second charge."""
    pending = Payment.objects.create(
        user=user,
        amount=Decimal("50.00"),
        currency="USD",
        payment_method="pm_card_visa",
        idempotency_key="k1",
        request_id="req-winner",
    )
    with pytest.raises(IdempotencyKeyInUse) as caught:
        charge(user, key="k1")
    assert caught.value.status == 409 and caught.value.retry_after == 1
    assert Payment.objects.count() == 1
    [event] = events(logs, "payment_in_flight_refused")
    assert event.fields["payment_id"] == str(pending.id)
    assert event.fields["winning_request_id"] == "req-winner"


def test_replay_names_the_winning_request(user, logs):
    from observability import request_context

    with request_context("req-first"):
        first, _ = charge(user, key="k2")
    with request_context("req-retry"):
        again, created = charge(user, key="k2")
    assert (again.pk, created) == (first.pk, False)
    [event] = events(logs, "payment_replayed")
    assert event.fields["request_id"] == "req-retry"
    assert event.fields["winning_request_id"] == "req-first"
    assert event.fields["payment_id"] == str(first.pk)


def test_replay_of_a_declined_payment_is_the_same_decline(user):
    with pytest.raises(PaymentDeclined):
        charge(user, method="pm_card_declined", key="k3")
    with pytest.raises(PaymentDeclined) as caught:
        charge(user, method="pm_card_declined", key="k3")
    assert caught.value.data["replayed"] is True
    assert caught.value.message == "The card was declined."
    assert Payment.objects.count() == 1


def test_duplicate_subscription_names_the_winner(user, plan, logs):
    from observability import request_context

    with request_context("req-won"):
        winner = services.subscription_create(user=user, plan=plan)
    with request_context("req-lost"), pytest.raises(Conflict):
        services.subscription_create(user=user, plan=plan)
    [event] = events(logs, "subscription_duplicate_refused")
    assert event.fields["request_id"] == "req-lost"
    assert event.fields["subscription_id"] == str(winner.id)
    assert event.fields["winning_request_id"] == "req-won"


def test_refused_refund_names_the_refund_that_took_the_rest(user, logs):
    from observability import request_context

    payment, _ = charge(user)
    with request_context("req-r1"):
        services.refund_create(payment=payment, amount=Decimal("30.00"))
    with request_context("req-r2"):
        last = services.refund_create(payment=payment, amount=Decimal("15.00"))
    with request_context("req-r3"), pytest.raises(InvalidRequest):
        services.refund_create(payment=payment, amount=Decimal("5.01"))
    with request_context("req-r4"):
        services.refund_create(payment=payment, amount=None)
    with request_context("req-r5"), pytest.raises(Conflict):
        services.refund_create(payment=payment, amount=None)
    refused = events(logs, "refund_refused")
    assert [e.fields["request_id"] for e in refused] == ["req-r3", "req-r5"]
    assert refused[0].fields["winning_refund_id"] == str(last.id)
    assert refused[0].fields["winning_request_id"] == "req-r2"
    assert refused[0].fields["refundable"] == "5.00"
    assert refused[1].fields["winning_request_id"] == "req-r4"


def test_the_database_refuses_a_refund_past_the_payment(user):
    """The CHECK constraint backs the service: no code path can refund more than was paid."""
    from django.db import IntegrityError, transaction

    payment, _ = charge(user)
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(amount_refunded=Decimal("50.01"))


def test_the_database_refuses_a_second_payment_with_one_key(user):
    from django.db import IntegrityError, transaction

    charge(user, key="k4")
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(
            user=user,
            amount=Decimal("50.00"),
            currency="USD",
            payment_method="pm_card_visa",
            idempotency_key="k4",
        )


def test_a_refund_on_a_stale_read_is_refused_not_lost(user, monkeypatch):
    """If the row lock were bypassed (a stale read), the compare-and-set refuses the refund."""
    payment, _ = charge(user)
    stale = Payment.objects.get(pk=payment.pk)  # amount_refunded 0.00, as read "before"
    services.refund_create(payment=payment, amount=Decimal("45.00"))

    class StaleQuerySet:
        def get(self, **kwargs):
            return stale

    monkeypatch.setattr(Payment.objects, "select_for_update", lambda **kwargs: StaleQuerySet())
    with pytest.raises(Conflict, match="changed while this refund was checked"):
        services.refund_create(payment=payment, amount=Decimal("10.00"))
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("45.00")
    assert Refund.objects.filter(payment=payment).count() == 1
