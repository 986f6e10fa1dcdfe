"""W3C trace context in and out: traceparent adopted or refused, every record on the trace."""

from __future__ import annotations

import http.server
import re
import threading

import pytest
from django.test import AsyncClient, Client
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from observability import outgoing_headers, request_context
from observability.tracing.tracecontext import parse_traceparent, valid_tracestate
from tests.conftest import NOT_SLOW, parse_tokens

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{PARENT}-01"
HEX = "0123456789abcdef"


class TestParser:
    @pytest.mark.parametrize(
        "header",
        [VALID, f"  {VALID}\t", f"01-{TRACE}-{PARENT}-00", f"cc-{TRACE}-{PARENT}-01-extra-data"],
    )
    def test_valid(self, header):
        parsed = parse_traceparent(header)
        assert parsed is not None and parsed.trace_id == TRACE and parsed.parent_id == PARENT

    @pytest.mark.parametrize(
        "header",
        [
            VALID.upper(),  # upper-case hex
            f"ff-{TRACE}-{PARENT}-01",  # version ff
            f"00-{TRACE}-{PARENT}-01-extra",  # version 00 with trailing data
            f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace ID
            f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent ID
            f"00-{TRACE[:-1]}-{PARENT}-01",
            f"00-{TRACE}-{PARENT}0-01",
            f"0-{TRACE}-{PARENT}-01",
            f"00_{TRACE}_{PARENT}_01",
            f"00-{TRACE}-{PARENT}-1",
            f"00-{TRACE}-{PARENT}-01\n",
            f"00-{TRACE}-{PARENT}-01" + " " * 600,
            "",
            "garbage",
        ],
    )
    def test_invalid(self, header):
        assert parse_traceparent(header) is None

    @staticmethod
    def otel(header: str):
        context = TraceContextTextMapPropagator().extract({"traceparent": header})
        from opentelemetry import trace

        span = trace.get_current_span(context).get_span_context()
        if not span.is_valid:
            return None
        return format(span.trace_id, "032x"), format(span.span_id, "016x")

    @given(
        version=st.text(alphabet=HEX + "F", min_size=2, max_size=2),
        trace_id=st.one_of(st.text(alphabet=HEX, min_size=32, max_size=32), st.just("0" * 32)),
        parent=st.one_of(st.text(alphabet=HEX, min_size=16, max_size=16), st.just("0" * 16)),
        flags=st.text(alphabet=HEX, min_size=2, max_size=2),
        tail=st.one_of(st.just(""), st.text(alphabet=HEX + "-x ", max_size=8)),
        blanks=st.sampled_from(["", " ", "\t", "  "]),
    )
    @hsettings(max_examples=500)
    def test_agrees_with_opentelemetrys_parser(
        self, version, trace_id, parent, flags, tail, blanks
    ):
        header = f"{blanks}{version}-{trace_id}-{parent}-{flags}{tail}{blanks}"
        ours = parse_traceparent(header)
        assert (None if ours is None else (ours.trace_id, ours.parent_id)) == self.otel(header)

    @given(st.text(max_size=80))
    @hsettings(max_examples=300)
    def test_never_accepts_what_opentelemetry_refuses(self, header):
        if "\n" in header:  # a header value never holds a line break
            return
        ours = parse_traceparent(header)
        assert (None if ours is None else (ours.trace_id, ours.parent_id)) == self.otel(header)

    def test_tracestate_kept_only_when_printable_and_short(self):
        assert valid_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE") is not None
        assert valid_tracestate("a=b\x00") is None
        assert valid_tracestate("a=" + "b" * 600) is None

    @pytest.mark.parametrize(
        "header",
        [
            "Rojo=1",  # an upper-case key
            "rojo=1,rojo=2",  # a key twice
            "rojo",  # no value
            "rojo=a,b",  # a member without "="
            "rojo=a=b",  # "=" in a value
            "rojo=" + "x" * 257,  # a value past 256 characters
            ",".join(f"k{n}=v" for n in range(33)),  # 33 members
            "rojo=\x1b[31mred",  # a control character
            "rojo=\u202eevil",  # not ASCII
        ],
    )
    def test_tracestate_breaking_the_w3c_grammar_is_dropped_whole(self, header):
        assert valid_tracestate(header) is None

    def test_tracestate_blanks_and_empty_members_are_tidied(self):
        assert valid_tracestate(" rojo=1 ,,\tcongo=t61 ,") == "rojo=1,congo=t61"
        assert valid_tracestate("rojo=1 , ,congo=2") == "rojo=1,congo=2"
        assert valid_tracestate("t@sys=1,a-b*c/d=x y") == "t@sys=1,a-b*c/d=x y"

    @pytest.mark.parametrize(
        "value",
        [
            "4111111111111111",
            "4111-1111-1111-1111",
            "4111%2F1111%2F1111%2F1111",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlX2hlcmU",
        ],
    )
    def test_a_tracestate_member_holding_a_card_or_token_is_dropped_alone(self, value):
        assert valid_tracestate(f"rojo=00f067aa0ba902b7,pan={value}") == "rojo=00f067aa0ba902b7"
        assert valid_tracestate(f"pan={value}") is None

    @given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80))
    @hsettings(max_examples=300)
    def test_tracestate_is_valid_exactly_when_opentelemetry_reads_it(self, header):
        from opentelemetry.trace.span import TraceState

        otel = TraceState.from_header([header])
        ours = valid_tracestate(header)
        if ours is None:
            return  # refused, or every member held a secret
        assert dict(TraceState.from_header([ours])) == {
            k: v for k, v in otel.items() if f"{k}={v}" in ours.split(",")
        }
        assert len(otel) > 0


def lines_of(logs, response):
    return [
        line
        for name in ("requests", "general")
        for line in logs.lines(name)
        if f"request_id={response['X-Request-ID']} " in line
    ]


def test_valid_traceparent_is_adopted_by_every_record_with_a_new_span(logs):
    response = Client().get("/t/plain/", HTTP_TRACEPARENT=VALID, HTTP_TRACESTATE="rojo=1")
    lines = lines_of(logs, response)
    assert len(lines) == 3
    spans = set()
    for line in lines:
        tokens = parse_tokens(line)
        assert tokens["trace_id"] == TRACE
        spans.add(tokens["span_id"])
    (span,) = spans
    assert re.fullmatch(r"[0-9a-f]{16}", span) and span != PARENT
    assert response["traceresponse"] == f"00-{TRACE}-{span}-01"


async def test_async_requests_adopt_the_trace_too(logs):
    response = await AsyncClient().get("/t/async/", headers={"traceparent": VALID})
    assert response.json()["context"]["trace_id"] == TRACE
    assert response["traceresponse"].startswith(f"00-{TRACE}-")


@pytest.mark.parametrize(
    "hostile",
    [
        f"00-{TRACE.upper()}-{PARENT}-01",
        f"ff-{TRACE}-{PARENT}-01",
        f"00-{'0' * 32}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-01 request_id=VICTIM",
        "x" * 10_000,
        f"00-{TRACE}-{PARENT}-01\r\nX-Evil: 1",
    ],
)
def test_invalid_traceparent_starts_a_fresh_trace(logs, hostile):
    response = Client().get("/t/plain/", HTTP_TRACEPARENT=hostile)
    trace_ids = {parse_tokens(line)["trace_id"] for line in lines_of(logs, response)}
    assert len(trace_ids) == 1 and TRACE not in trace_ids and TRACE.upper() not in trace_ids
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", response["traceresponse"])
    assert "VICTIM" not in logs.everything()


def test_traceparent_ignored_when_not_trusted(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "TRUST_INCOMING_TRACEPARENT": False}
    response = Client().get("/t/plain/", HTTP_TRACEPARENT=VALID)
    assert TRACE not in response["traceresponse"]


def test_traceparent_trusted_only_from_proxies(logs, settings):
    settings.OBSERVABILITY = {
        **NOT_SLOW,
        "TRUST_INCOMING_TRACEPARENT": "proxies",
        "TRUSTED_PROXIES": ["10.0.0.0/8"],
    }
    inside = Client(REMOTE_ADDR="10.0.0.5").get("/t/plain/", HTTP_TRACEPARENT=VALID)
    outside = Client(REMOTE_ADDR="192.0.2.1").get("/t/plain/", HTTP_TRACEPARENT=VALID)
    assert TRACE in inside["traceresponse"] and TRACE not in outside["traceresponse"]


def test_traceresponse_header_can_be_renamed_or_switched_off(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "TRACE_RESPONSE_HEADER": "X-Trace"}
    response = Client().get("/t/plain/")
    assert response["X-Trace"].startswith("00-") and "traceresponse" not in response
    settings.OBSERVABILITY = {**NOT_SLOW, "TRACE_RESPONSE_HEADER": None}
    response = Client().get("/t/plain/")
    assert "traceresponse" not in response and "X-Trace" not in response


class TestOutgoing:
    def test_headers_inside_a_request_context(self):
        assert outgoing_headers() == {}
        with request_context(request_id="job-1") as context:
            headers = outgoing_headers()
        assert headers["X-Request-ID"] == "job-1"
        version, trace_id, span, flags = headers["traceparent"].split("-")
        assert (version, trace_id, flags) == ("00", context["trace_id"], "01")
        assert span != context["span_id"] and len(span) == 16

    @pytest.fixture
    def downstream(self):
        """Another service: a real HTTP server that records the headers it receives."""
        received: list[dict[str, str]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                received.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_port}/ledger", received
        server.shutdown()
        server.server_close()

    def assert_shares_the_trace(self, logs, response, received):
        assert len(received) == 1
        headers = received[0]
        assert headers["x-request-id"] == response["X-Request-ID"]
        _, trace_id, child, flags = headers["traceparent"].split("-")
        _, our_trace, our_span, _ = response["traceresponse"].split("-")
        assert trace_id == our_trace == TRACE
        assert child != our_span and child != PARENT and flags == "01"
        assert headers["tracestate"] == "rojo=00f067aa0ba902b7"

    @pytest.mark.parametrize("via", ["requests", "httpx"])
    def test_two_services_share_the_trace(self, logs, downstream, via):
        url, received = downstream
        response = Client().get(
            "/t/call/",
            {"url": url, "via": via},
            HTTP_TRACEPARENT=VALID,
            HTTP_TRACESTATE="rojo=00f067aa0ba902b7",
        )
        assert response.status_code == 200
        self.assert_shares_the_trace(logs, response, received)

    async def test_async_httpx_client(self, logs, downstream):
        url, received = downstream
        response = await AsyncClient().get(
            "/t/call-async/",
            {"url": url},
            headers={"traceparent": VALID, "tracestate": "rojo=00f067aa0ba902b7"},
        )
        assert response.status_code == 200
        self.assert_shares_the_trace(logs, response, received)

    def test_a_tracestate_member_holding_a_card_is_not_passed_on(self, logs, downstream):
        url, received = downstream
        response = Client().get(
            "/t/call/",
            {"url": url, "via": "requests"},
            HTTP_TRACEPARENT=VALID,
            HTTP_TRACESTATE="rojo=00f067aa0ba902b7,pan=4111-1111-1111-1111",
        )
        assert response.status_code == 200
        assert received[0]["tracestate"] == "rojo=00f067aa0ba902b7"
        event = next(line for line in logs.lines("security") if "tracestate_member_dropped" in line)
        fields = parse_tokens(event)
        assert fields["members"] == "1" and fields["request_id"] == response["X-Request-ID"]
        assert "1111" not in logs.everything().replace(fields["request_id"], "")

    def test_a_header_the_caller_set_is_kept(self):
        from observability.clients import add_trace_headers

        headers = {"traceparent": "mine"}
        with request_context(request_id="r-2"):
            add_trace_headers(headers)
        assert headers["traceparent"] == "mine" and headers["X-Request-ID"] == "r-2"
