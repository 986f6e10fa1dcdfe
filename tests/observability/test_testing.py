"""observability.testing: what other projects' tests use to assert on their logging."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from observability import bind, get_request_id, log_billing_event, request_context
from observability.testing import capture_records, reset_context

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]


def test_capture_records_sees_context_fields_and_masking():
    with capture_records() as records, request_context(request_id="rid-7"):
        bind(order_id=9)
        log_billing_event(event_type="payment_created", details={"card": "4111111111111111"})
        logging.getLogger("shop").info("charged %s", "4111 1111 1111 1111")
    event = next(r for r in records if r.fields.get("event_type") == "payment_created")
    assert event.logger == "billing.events"
    assert event.fields["request_id"] == "rid-7"
    assert event.fields["order_id"] == 9
    assert event.fields["card"] == "[REDACTED]"
    charged = next(r for r in records if r.logger == "shop")
    assert charged.message == "charged ****1111"


def test_capture_records_of_one_logger_sees_the_lifecycle():
    with capture_records("billing.api") as records:
        response = Client().get("/t/plain/")
    assert [r.message.split(" - ")[0] for r in records] == [
        "API Request started",
        "API Request completed",
    ]
    assert {r.fields["request_id"] for r in records} == {response["X-Request-ID"]}


def test_reset_context_forgets_a_leaked_context():
    with request_context(request_id="leaky"):
        reset_context()
        assert get_request_id() == "-"
