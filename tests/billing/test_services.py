"""The business rules, called directly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing import services
from billing.exceptions import Conflict, IdempotencyKeyInUse, InvalidRequest, PaymentDeclined
from billing.models import Payment, Refund

pytestmark = pytest.mark.django_db


def charge(user, amount="50.00", method="pm_card_visa", key=None, description=""):
    return services.payment_create(
        user=user,
        amount=Decimal(amount),
        currency="USD",
        payment_method=method,
        description=description,
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


# --- Pending keys: reconciled with the gateway, never expired (THREATS.md invariant 8) ------
#
# A worker killed mid-charge is simulated in-process: `gateway.charge` is replaced by one that
# raises WorkerKilled, a BaseException nothing in the service catches, either before calling
# the real sandbox gateway (it never charged) or after (it charged, the answer was lost). What
# is committed then is exactly what a SIGKILLed worker leaves: the payment row `pending` and
# the sandbox gateway's own table with or without the charge. tests/e2e/test_reconcile.py
# does it for real, by SIGKILLing a gunicorn worker in the middle of a slow charge.


class WorkerKilled(BaseException):
    """Stands for SIGKILL: no except clause and no later statement of the worker runs."""


def die_mid_charge(monkeypatch, *, charged: bool) -> None:
    from billing import gateway

    real = gateway.charge

    def charge_then_die(**kwargs):
        if charged:
            real(**kwargs)
        raise WorkerKilled

    monkeypatch.setattr(gateway, "charge", charge_then_die)


def dead_worker_payment(monkeypatch, user, *, charged: bool, key: str, **kwargs) -> Payment:
    """The pending payment (and gateway state) a worker killed mid-charge leaves behind."""
    from observability import request_context

    with monkeypatch.context() as patched:
        die_mid_charge(patched, charged=charged)
        with request_context("req-dead"), pytest.raises(WorkerKilled):
            charge(user, key=key, **kwargs)
    payment = Payment.objects.get(user=user, idempotency_key=key)
    assert payment.status == Payment.Status.PENDING
    return payment


LEASE = 60


def after_the_lease(settings, seconds: float = LEASE + 1):
    """The clock `seconds` later: every request that was talking to the gateway has given up."""
    from datetime import timedelta

    from django.utils import timezone
    from freezegun import freeze_time

    settings.BILLING_PENDING_LEASE = LEASE
    return freeze_time(timezone.now() + timedelta(seconds=seconds), tick=True)


def gateway_charges(payment: Payment) -> list:
    """What the sandbox gateway (the provider's side) recorded under the payment's key."""
    from billing.models import SandboxCharge

    return list(SandboxCharge.objects.filter(idempotency_key=payment.gateway_idempotency_key))


@pytest.mark.parametrize("charged", [False, True], ids=["gateway-had-not-charged", "had-charged"])
def test_invariant_8_retry_after_the_worker_died_mid_charge_gets_one_charge(
    user, logs, monkeypatch, settings, charged
):
    from observability import request_context

    settings.BILLING_PENDING_LEASE = LEASE
    dead = dead_worker_payment(monkeypatch, user, charged=charged, key="k-dead")
    # (a) Within the lease its request may still be at the gateway: 409, no charge.
    with pytest.raises(IdempotencyKeyInUse) as caught:
        charge(user, key="k-dead")
    assert caught.value.retry_after == 1
    # (b) After it, the retry asks the gateway and gets the one outcome.
    with after_the_lease(settings), request_context("req-retry"):
        payment, created = charge(user, key="k-dead")
    assert (payment.pk, created, payment.status) == (dead.pk, False, "succeeded")
    [gateway_charge] = gateway_charges(payment)
    assert payment.gateway_reference == gateway_charge.reference
    assert charge(user, key="k-dead")[0].gateway_reference == gateway_charge.reference
    assert len(gateway_charges(payment)) == 1
    assert Payment.objects.count() == 1
    [event] = events(logs, "payment_reconciled")
    assert event.fields["request_id"] == "req-retry"
    assert event.fields["payment_id"] == str(dead.pk)
    assert event.fields["payment_status"] == "succeeded"
    assert event.fields["gateway"] == ("had_charged" if charged else "charged_now")
    assert event.fields["trigger"] == "retry"
    assert event.fields["original_request_id"] == "req-dead"
    assert len(events(logs, "payment_succeeded")) == 1  # once per payment, whoever settles it


def test_invariant_8_a_decline_the_dead_worker_got_is_replayed_not_charged_again(
    user, monkeypatch, settings
):
    dead = dead_worker_payment(
        monkeypatch, user, charged=True, key="k-declined", method="pm_card_insufficient_funds"
    )
    with after_the_lease(settings), pytest.raises(PaymentDeclined) as caught:
        charge(user, key="k-declined", method="pm_card_insufficient_funds")
    assert caught.value.data["replayed"] is True
    assert caught.value.message == "The card has insufficient funds."
    dead.refresh_from_db()
    assert (dead.status, dead.failure_code) == ("failed", "insufficient_funds")
    assert len(gateway_charges(dead)) == 1


def test_invariant_8_concurrent_retries_of_a_stale_key_reconcile_once(
    user, logs, monkeypatch, settings
):
    """(c) A retry arriving while another one reconciles finds the lease taken: 409, no charge."""
    from billing import gateway

    dead = dead_worker_payment(monkeypatch, user, charged=False, key="k-both")
    real_lookup = gateway.charge_lookup
    rivals = []

    def lookup_while_a_rival_retries(**kwargs):
        with pytest.raises(IdempotencyKeyInUse) as caught:
            charge(user, key="k-both")
        rivals.append(caught.value)
        return real_lookup(**kwargs)

    monkeypatch.setattr(gateway, "charge_lookup", lookup_while_a_rival_retries)
    with after_the_lease(settings):
        payment, _ = charge(user, key="k-both")
    assert len(rivals) == 1 and payment.status == "succeeded"
    assert len(gateway_charges(dead)) == 1
    assert len(events(logs, "payment_reconciled")) == 1
    assert len(events(logs, "payment_in_flight_refused")) == 1


def test_invariant_8_an_owner_slower_than_its_lease_and_a_retry_charge_once(
    user, logs, monkeypatch, settings
):
    """Past the lease, a retry races a request that is in fact still at the gateway: both send
    the payment's one gateway key, so the gateway charges once, and the row is settled once."""
    from billing import gateway

    real = gateway.charge
    retried = []

    def slow_owner(**kwargs):
        monkeypatch.setattr(gateway, "charge", real)
        with after_the_lease(settings):
            retried.append(charge(user, key="k-slow")[0])  # charges now, with the same key
        return real(**kwargs)  # the owner's own call reaches the gateway second

    monkeypatch.setattr(gateway, "charge", slow_owner)
    payment, created = charge(user, key="k-slow")
    assert created and payment.status == "succeeded"
    assert payment.gateway_reference == retried[0].gateway_reference
    assert len(gateway_charges(payment)) == 1
    assert len(events(logs, "payment_succeeded")) == 1
    assert len(events(logs, "payment_reconciled")) == 1


def test_invariant_8_a_gateway_timeout_leaves_the_payment_pending_then_reconciled(
    user, monkeypatch, settings
):
    from billing import gateway
    from billing.exceptions import GatewayUnavailable

    settings.BILLING_PENDING_LEASE = LEASE
    settings.BILLING_GATEWAY_TIMEOUT = 0.05
    monkeypatch.setattr(gateway, "DELAY", 1.0)  # the answer would come after the timeout
    with pytest.raises(GatewayUnavailable) as caught:
        charge(user, key="k-timeout")
    assert caught.value.status == 503 and caught.value.retry_after == LEASE
    payment = Payment.objects.get()
    assert payment.status == "pending" and caught.value.data["payment"].pk == payment.pk
    monkeypatch.setattr(gateway, "DELAY", 0.0)
    with pytest.raises(IdempotencyKeyInUse):
        charge(user, key="k-timeout")
    with after_the_lease(settings):
        reconciled, _ = charge(user, key="k-timeout")
    assert reconciled.status == "succeeded" and len(gateway_charges(reconciled)) == 1


def test_invariant_8_reconcile_command_settles_stale_payments_without_a_retry(
    user, logs, monkeypatch, settings
):
    from io import StringIO

    from django.core.management import call_command

    had = dead_worker_payment(monkeypatch, user, charged=True, key="k-had")
    had_not = dead_worker_payment(monkeypatch, user, charged=False, key="k-had-not")
    settled, _ = charge(user, key="k-settled")
    with after_the_lease(settings):
        fresh = dead_worker_payment(monkeypatch, user, charged=False, key="k-fresh")
        dry = StringIO()
        call_command("payment_reconcile", "--dry-run", stdout=dry)
        assert Payment.objects.filter(status="pending").count() == 3  # nothing changed
        out = StringIO()
        call_command("payment_reconcile", stdout=out)
    assert dry.getvalue().splitlines() == [
        f"payment {had.pk}: pending since {had.attempted_at.isoformat()}, would be reconciled",
        f"payment {had_not.pk}: pending since {had_not.attempted_at.isoformat()}, "
        "would be reconciled",
        "2 stale pending payments (dry run: none reconciled)",
    ]
    had.refresh_from_db()
    had_not.refresh_from_db()
    fresh.refresh_from_db()
    assert out.getvalue().splitlines() == [
        f"payment {had.pk}: succeeded (the gateway had charged it: {had.gateway_reference})",
        f"payment {had_not.pk}: succeeded (charged now: {had_not.gateway_reference})",
        "2 stale pending payments: 2 reconciled, 0 left pending",
    ]
    assert (had.status, had_not.status, fresh.status) == ("succeeded", "succeeded", "pending")
    assert [len(gateway_charges(p)) for p in (had, had_not, fresh, settled)] == [1, 1, 0, 1]
    reconciled = events(logs, "payment_reconciled")
    assert [(e.fields["payment_id"], e.fields["trigger"]) for e in reconciled] == [
        (str(had.pk), "sweep"),
        (str(had_not.pk), "sweep"),
    ]
    assert [e.fields["request_id"] for e in reconciled] == ["-", "-"]  # outside any request


def test_reconcile_command_names_the_payments_the_gateway_did_not_answer_for(
    user, monkeypatch, settings
):
    from io import StringIO

    from django.core.management import CommandError, call_command

    from billing import gateway

    stuck = dead_worker_payment(monkeypatch, user, charged=False, key="k-stuck")

    def no_answer(**kwargs):
        raise gateway.GatewayTimeout("The payment gateway did not answer within 0.05 s.")

    monkeypatch.setattr(gateway, "charge_lookup", no_answer)
    out = StringIO()
    with after_the_lease(settings), pytest.raises(CommandError) as caught:
        call_command("payment_reconcile", stdout=out)
    assert str(caught.value) == f"1 stale pending payment could not be reconciled: {stuck.pk}"
    assert out.getvalue().splitlines() == [
        f"payment {stuck.pk}: still pending (The payment gateway did not answer within 0.05 s.)",
    ]
    stuck.refresh_from_db()
    assert stuck.status == "pending"


# --- One Idempotency-Key, one request body (THREATS.md invariants 8 and 9) ---------------------


def test_invariant_8_reused_key_with_a_different_description_is_refused(user):
    charge(user, key="k-desc", description="Pro plan, March")
    with pytest.raises(Conflict) as caught:
        charge(user, key="k-desc", description="Pro plan, April")
    assert caught.value.field == "Idempotency-Key"
    assert "description" in caught.value.message
    assert "April" not in caught.value.message  # names the field, never echoes the value
    assert Payment.objects.count() == 1


def test_the_request_hash_is_of_the_canonical_body(user):
    """50, 50.0 and 50.00 are one amount: the stored hash is of the validated values."""
    first, _ = charge(user, amount="50", key="k-canon")
    again, created = charge(user, amount="50.00", key="k-canon")
    assert (again.pk, created) == (first.pk, False)
    assert len(first.request_hash) == 64
