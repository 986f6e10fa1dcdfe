"""Each of the five events, made through the API: written to the outbox in the transaction of
its change, with the request ID of the request that made it; a change rolled back leaves no
event. The events are written in the test's transaction, so nothing is published here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from billing.models import Payment, Refund, Subscription, WebhookEndpoint, WebhookEvent

PAY = {"amount": "12.00", "currency": "USD", "payment_method": "pm_card_visa"}


def _pay(api, **changes: str) -> Any:
    return api.post("/api/v1/payments/", {**PAY, **changes}, format="json")


def _decline(api, plan) -> Any:
    return _pay(api, payment_method="pm_card_declined")


def _refund(api, plan) -> Any:
    payment = _pay(api).json()
    return api.post(f"/api/v1/payments/{payment['id']}/refund/", {}, format="json")


def _subscribe(api, plan) -> Any:
    return api.post("/api/v1/subscriptions/", {"plan": plan.code}, format="json")


def _cancel(api, plan) -> Any:
    subscription = _subscribe(api, plan).json()
    return api.post(f"/api/v1/subscriptions/{subscription['id']}/cancel/")


#: event type -> (the request that makes it, its answer's status, the service module that
#: writes the event).
CHANGES: dict[str, tuple[Callable[[Any, Any], Any], int, str]] = {
    "payment.succeeded": (lambda api, plan: _pay(api), 201, "settlement"),
    "payment.failed": (_decline, 402, "settlement"),
    "refund.created": (_refund, 201, "refunds"),
    "subscription.created": (_subscribe, 201, "subscriptions"),
    "subscription.canceled": (_cancel, 200, "subscriptions"),
}


@pytest.fixture
def endpoint(db) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook")  # every event type


@pytest.mark.parametrize("event_type", list(CHANGES))
def test_each_event_is_in_the_outbox_with_the_request_id_of_its_request(
    api, plan, endpoint, event_type
):
    make, status, _ = CHANGES[event_type]
    response = make(api, plan)
    assert response.status_code == status, response.content
    event = WebhookEvent.objects.get(type=event_type)
    assert event.request_id and event.request_id == response["X-Request-ID"]
    assert event.traceparent.startswith("00-")
    assert [row.endpoint for row in event.outbox.all()] == [endpoint]
    body = response.json()
    assert event.payload["id"] == (body.get("id") or body["error"]["payment"]["id"])


class Refused(Exception):
    """Raised right after the event is written, inside the change's transaction."""


@pytest.mark.parametrize("event_type", list(CHANGES))
def test_a_change_rolled_back_after_its_event_was_written_leaves_neither(
    api, plan, endpoint, monkeypatch, event_type
):
    """The event is written, then the change fails: the change and the event go together."""
    import importlib

    from billing.webhooks.events import event_record

    make, _, module = CHANGES[event_type]
    written: list[str] = []

    def record_then_fail(*, event_type: str, data: dict[str, Any]) -> WebhookEvent:
        event = event_record(event_type=event_type, data=data)
        written.append(event_type)
        if event_type == wanted:
            assert WebhookEvent.objects.filter(pk=event.pk).exists()
            raise Refused
        return event

    wanted = event_type
    monkeypatch.setattr(
        importlib.import_module(f"billing.services.{module}"), "event_record", record_then_fail
    )
    with pytest.raises(Refused):
        make(api, plan)
    assert written[-1] == event_type
    assert not WebhookEvent.objects.filter(type=event_type).exists()
    # ... and the change is gone with it.
    if event_type.startswith("payment."):
        assert list(Payment.objects.values_list("status", flat=True)) == ["pending"]
    elif event_type == "refund.created":
        assert not Refund.objects.exists()
        assert Payment.objects.get().amount_refunded == 0
    elif event_type == "subscription.created":
        assert not Subscription.objects.exists()
    else:
        assert Subscription.objects.get().status == Subscription.Status.ACTIVE
