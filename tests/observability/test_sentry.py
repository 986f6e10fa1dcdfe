"""Sentry's events carry the request's IDs: read through the SDK's own transport, no network."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import AsyncClient, Client
from django.urls import include, path

from observability import request_context
from tests.conftest import NOT_SLOW

sentry_sdk = pytest.importorskip("sentry_sdk")
from sentry_sdk.transport import Transport  # noqa: E402

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def failing_view(request):
    try:
        raise ValueError("charge failed")
    except ValueError:
        sentry_sdk.capture_exception()
    return HttpResponse("reported")


async def async_view(request):
    sentry_sdk.capture_message("async view")
    return HttpResponse("ok")


urlpatterns = [
    path("sentry/fail/", failing_view),
    path("sentry/async/", async_view),
    path("", include("tests.urls")),
]


class Kept(Transport):
    """The SDK's transport hook: every envelope it would send, kept here."""

    def __init__(self, options=None):
        super().__init__(options)
        self.events = []

    def capture_envelope(self, envelope):
        for item in envelope.items:
            event = item.get_event()
            if event is not None:
                self.events.append(event)


@pytest.fixture
def sentry():
    transport = Kept()
    sentry_sdk.init(
        dsn="https://public@sentry.invalid/1",
        transport=transport,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    yield transport
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def test_an_error_sentry_captures_carries_the_request_id_and_trace_id(logs, sentry, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "VIEWER_URL": "https://billing.example.com/ops/requests/"}
    response = Client().get("/sentry/fail/")
    (event,) = sentry.events
    rid = response["X-Request-ID"]
    trace_id = response["traceresponse"].split("-")[1]
    assert event["tags"] == {"request_id": rid, "trace_id": trace_id}
    assert event["exception"]["values"][0]["type"] == "ValueError"
    link = event["contexts"]["observability"]["request"]
    assert link == f"https://billing.example.com/ops/requests/{rid}/"


def test_two_requests_on_one_thread_carry_their_own_tags(logs, sentry):
    client = Client()
    first = client.get("/sentry/fail/")["X-Request-ID"]
    second = client.get("/sentry/fail/")["X-Request-ID"]
    assert first != second
    assert [event["tags"]["request_id"] for event in sentry.events] == [first, second]
    sentry_sdk.capture_message("after the requests")
    assert "request_id" not in sentry.events[-1].get("tags", {})


async def test_async_requests_carry_their_own_tags(logs, sentry):
    client = AsyncClient()
    ids = [(await client.get("/sentry/async/"))["X-Request-ID"] for _ in range(2)]
    assert [event["tags"]["request_id"] for event in sentry.events] == ids


def test_a_task_in_request_context_carries_its_ids(sentry):
    with request_context(request_id="job-7") as context:
        sentry_sdk.capture_message("nightly invoices failed")
    (event,) = sentry.events
    assert event["tags"] == {"request_id": "job-7", "trace_id": context["trace_id"]}


def test_without_sentry_initialised_nothing_changes(logs):
    assert not sentry_sdk.is_initialized()
    assert Client().get("/sentry/fail/").status_code == 200
