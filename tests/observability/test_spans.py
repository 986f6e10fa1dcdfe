"""span() blocks and outgoing calls as records of their own: span IDs, parents, durations."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest
from django.test import AsyncClient, Client

from tests.conftest import configure_logs, parse_tokens

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.observability.urls_spans")]


@pytest.fixture
def debug_logs(tmp_path):
    return configure_logs(tmp_path / "logs", debug=True)


def events(logs, rid, event_type, name="general"):
    return [
        parse_tokens(line)
        for line in logs.lines(name)
        if f"request_id={rid} " in line and f"event_type={event_type}" in line
    ]


def test_a_span_is_one_record_with_its_own_id_and_nested_ones_name_their_parent(debug_logs):
    response = Client().get("/s/span/")
    rid = response["X-Request-ID"]
    request_span = response["traceresponse"].split("-")[2]
    spans = {x["span_name"]: x for x in events(debug_logs, rid, "span")}
    assert set(spans) == {"outer.block", "inner.block"}
    outer, inner = spans["outer.block"], spans["inner.block"]
    assert outer["item"] == "x" and outer["span_id"] == request_span
    assert "parent_span_id" not in outer  # its parent is the request's span
    assert inner["parent_span_id"] == outer["child_span_id"] != request_span
    assert float(outer["duration"]) >= float(inner["duration"])
    (query,) = events(debug_logs, rid, "db_query", "debug")
    assert query["parent_span_id"] == outer["child_span_id"]


def test_a_span_that_raises_has_its_error(logs):
    response = Client(raise_request_exception=False).get("/s/span/", {"fail": "1"})
    assert response.status_code == 500
    rid = response["X-Request-ID"]
    (failing,) = [x for x in events(logs, rid, "span") if x["span_name"] == "failing.block"]
    assert failing["error"] == "ValueError"


async def test_async_with_span(logs):
    response = await AsyncClient().get("/s/async/")
    rid = response["X-Request-ID"]
    (record,) = events(logs, rid, "span")
    assert record["span_name"] == "async.work" and record["step"] == "one"


@pytest.fixture
def downstream():
    """Another service: a real HTTP server that keeps the traceparent it receives."""
    received: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            received.append(self.headers.get("traceparent", ""))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("via", ["requests", "httpx"])
def test_an_outgoing_call_records_the_span_id_the_server_received(logs, downstream, via):
    base, received = downstream
    url = f"{base}/cards/4111111111111111/charge?api_key=k3y-s3cret"
    response = Client().get("/s/call/", {"url": url, "via": via})
    assert response.json() == {"status": 201}
    rid = response["X-Request-ID"]
    (call,) = events(logs, rid, "http_call")
    (traceparent,) = received
    assert call["child_span_id"] == traceparent.split("-")[2]
    assert traceparent.split("-")[1] == call["trace_id"]
    assert call["call_method"] == "GET" and call["call_status"] == "201"
    assert call["call_host"] == base.removeprefix("http://")
    assert call["call_path"].startswith("/cards/") and call["call_path"].endswith("/charge")
    assert float(call["duration"]) > 0
    everything = logs.everything()
    assert "4111111111111111" not in everything and "k3y-s3cret" not in everything


@pytest.mark.parametrize("via", ["requests", "httpx"])
def test_a_call_that_fails_is_a_warning_with_its_error(logs, via):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    response = Client(raise_request_exception=False).get(
        "/s/call/", {"url": f"http://127.0.0.1:{port}/x", "via": via}
    )
    assert response.status_code == 500
    rid = response["X-Request-ID"]
    (line,) = [x for x in logs.lines("general") if rid in x and "event_type=http_call" in x]
    assert " WARNING [billing.spans] Outgoing call GET " in line
    expected = "ConnectError" if via == "httpx" else "ConnectionError"
    assert parse_tokens(line)["error"] == expected


@pytest.mark.urls("config.urls")
def test_a_payments_gateway_call_is_a_span(logs, api):
    body = {"amount": "9.99", "currency": "USD", "payment_method": "pm_card_declined"}
    response = api.post("/api/v1/payments/", body, format="json")
    assert response.status_code == 402
    rid = response["X-Request-ID"]
    (gateway,) = events(logs, rid, "span")
    assert gateway["span_name"] == "gateway.charge"
    assert gateway["payment_method"] == "pm_card_declined"


def test_logtrace_prints_the_waterfall_and_where_the_time_went(debug_logs, capsys):
    from django.core.management import call_command

    from billing.models import Plan

    Plan.objects.create(name="P", code="p", amount="1.00", currency="USD")
    response = Client().get("/s/span/")
    rid = response["X-Request-ID"]
    debug_logs.lines("general")
    call_command("logtrace", rid, "--dir", str(debug_logs.path))
    out = capsys.readouterr().out
    print(out)
    lines = out.splitlines()
    (split,) = [line for line in lines if "where the time went:" in line]
    assert "database " in split and "outgoing calls 0.0 ms" in split and "our own code" in split
    (outer,) = [
        line for line in lines if line.strip().startswith("span |") and "outer.block" in line
    ]
    (inner,) = [line for line in lines if "inner.block" in line and "|" in line[:60]]
    assert inner.index("inner.block") > outer.index("outer.block")  # nested: indented
    assert any(line.strip().startswith("query |") and "billing_plan" in line for line in lines)


def test_the_story_page_draws_a_waterfall_and_says_where_the_time_went(debug_logs, settings, staff):
    from django.contrib.auth import get_user_model

    from billing.models import Plan, Subscription
    from tests.observability.test_viewer import page

    settings.LOG_BASE_DIR = str(debug_logs.path)
    for i in range(12):
        plan = Plan.objects.create(name=f"P{i}", code=f"p{i}", amount="1.00", currency="USD")
        owner = get_user_model().objects.create_user(f"owner{i}")
        Subscription.objects.create(user=owner, plan=plan)
    rid = Client().get("/s/n-plus-one/")["X-Request-ID"]
    debug_logs.lines("general")
    viewer = Client()
    viewer.force_login(staff)
    parsed = page(viewer.get(f"/ops/requests/{rid}/"))
    bars = parsed.find("li", "bar")
    assert [bar["data-kind"] for bar in bars] == ["query", "query"]
    repeated = bars[1]
    assert len(repeated["data-segments"].split()) == 12  # one row, a segment per run
    assert len(repeated["data-records"].split()) == 12
    text = " ".join(parsed.text.split())
    assert "\u00d712 SELECT" in text  # x12, the multiplication sign
    assert "Where the time went" in text and "13 database queries, 0 outgoing calls" in text
    for part in ("database", "outgoing calls", "our own code"):
        assert part in text
    (figure,) = [f for f in parsed.find("figure") if f.get("id") == "waterfall"]
    assert float(figure["data-span-ms"]) > 0
