"""The sandbox gateway answers by idempotency key, as a real one does, and remembers in its own
table (the provider's side): every worker sees it, and it outlives any of them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing import gateway

pytestmark = pytest.mark.django_db

VISA = {"amount": Decimal("12.00"), "currency": "EUR", "payment_method": "pm_card_visa"}


def test_one_key_is_one_charge_and_answers_with_the_original():
    from billing.models import SandboxCharge

    first = gateway.charge(idempotency_key="pay_1", **VISA)
    again = gateway.charge(idempotency_key="pay_1", **VISA)
    assert first == again and first.succeeded
    assert first.reference.startswith("ch_")
    assert SandboxCharge.objects.filter(idempotency_key="pay_1").count() == 1


def test_a_declined_charge_is_remembered_as_declined():
    declined = {**VISA, "payment_method": "pm_card_declined"}
    first = gateway.charge(idempotency_key="pay_2", **declined)
    assert not first.succeeded and first.failure_code == "card_declined"
    assert gateway.charge_lookup(idempotency_key="pay_2") == first


def test_lookup_tells_whether_a_charge_happened():
    assert gateway.charge_lookup(idempotency_key="pay_3") is None
    made = gateway.charge(idempotency_key="pay_3", **VISA)
    assert gateway.charge_lookup(idempotency_key="pay_3") == made


def test_one_key_with_other_parameters_is_refused():
    gateway.charge(idempotency_key="pay_4", **VISA)
    with pytest.raises(gateway.GatewayError, match=r"pay_4.*different parameters"):
        gateway.charge(idempotency_key="pay_4", **{**VISA, "amount": Decimal("12.01")})


@pytest.mark.parametrize(
    ("delay", "timeout", "charged"),
    [(0.2, 0.15, True), (0.4, 0.1, False)],
    ids=["answer-lost-after-the-charge", "request-never-arrived"],
)
def test_a_charge_slower_than_the_timeout_raises_and_may_have_charged(
    monkeypatch, settings, delay, timeout, charged
):
    """The request reaches the provider half-way through the round trip: a timeout after that
    point leaves a charge the caller never heard of; reconciliation finds it by key."""
    monkeypatch.setattr(gateway, "DELAY", delay)
    settings.BILLING_GATEWAY_TIMEOUT = timeout
    with pytest.raises(gateway.GatewayTimeout, match=f"within {timeout} s"):
        gateway.charge(idempotency_key="pay_5", **VISA)
    monkeypatch.setattr(gateway, "DELAY", 0.0)
    assert (gateway.charge_lookup(idempotency_key="pay_5") is not None) is charged


def test_invariant_1_server_made_references_never_read_as_a_card_number(monkeypatch):
    """A charge reference or a gateway key is logged and printed: 13 digits in a row would
    read as a card number (4111111111111111 passes Luhn), so such a draw is thrown away."""
    import secrets

    from billing.models import gateway_idempotency_key_new

    card_like = "4111111111111111" + "abcdef12"
    draws = iter([card_like, "0123456789ab" * 2, card_like + "ab" * 4, "ab" * 16])
    monkeypatch.setattr(secrets, "token_hex", lambda nbytes: next(draws)[: nbytes * 2])
    made = gateway.charge(idempotency_key="pay_6", **VISA)
    assert made.reference == "ch_0123456789ab0123456789ab"
    assert gateway_idempotency_key_new() == "pay_" + "ab" * 16
