"""A client cannot predict, forge or poison the IDs and context fields written on every record."""

from __future__ import annotations

import os
import random
import re
import uuid

import pytest
from django.core.cache import caches
from django.test import Client

from observability.conf import obs_settings
from observability.tracing import ids
from tests.conftest import NOT_SLOW, parse_tokens

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]


class TestIdsFromTheCsprng:
    def test_ids_come_from_os_urandom(self, monkeypatch):
        """Every ID is a slice of os.urandom output: no seeded generator in between."""
        calls = []

        def fake_urandom(size):
            calls.append(size)
            return bytes(range(256)) * (size // 256) + bytes(range(size % 256))

        monkeypatch.setattr(os, "urandom", fake_urandom)
        ids._pool.clear()
        request_id, trace_id, span_id = ids.new_ids()
        ids._pool.clear()
        assert calls
        # The first 40 bytes make a request ID that reads as a card number (0001020304054607
        # 8809...): that draw is thrown away (test_card_ids.py) and the IDs are the next
        # 40 bytes' slices.
        stream = b"".join(bytes(range(256)) for _ in range(2)).hex()
        start = stream.index(trace_id) - 32
        assert start % 80 == 0 and start > 0
        h = stream[start : start + 80]
        assert request_id == f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{request_id[19]}{h[17:20]}-{h[20:32]}"
        assert request_id[19] in "89ab"
        assert trace_id == h[32:64]
        assert span_id == h[64:80]

    def test_seeding_pythons_random_does_not_repeat_ids(self):
        random.seed(1234)
        first = [ids.new_request_id() for _ in range(5)]
        random.seed(1234)
        second = [ids.new_request_id() for _ in range(5)]
        assert set(first).isdisjoint(second)

    def test_ids_are_uuid4_and_hex(self):
        for _ in range(200):
            request_id, trace_id, span_id = ids.new_ids()
            assert uuid.UUID(request_id).version == 4
            assert uuid.UUID(request_id).variant == uuid.RFC_4122
            assert str(uuid.UUID(request_id)) == request_id
            assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
            assert re.fullmatch(r"[0-9a-f]{16}", span_id)

    def test_forked_child_never_hands_out_the_parents_next_ids(self):
        ids.new_ids()  # the pool now holds the rest of a batch
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(read)
            os.write(write, ",".join(ids.new_request_id() for _ in range(8)).encode())
            os._exit(0)
        os.close(write)
        child = os.read(read, 4096).decode().split(",")
        os.close(read)
        os.waitpid(pid, 0)
        parent = [ids.new_request_id() for _ in range(8)]
        assert set(child).isdisjoint(parent)

    def test_every_request_gets_a_new_span_and_trace(self, logs):
        spans, traces = set(), set()
        for _ in range(5):
            response = Client().get("/t/plain/")
            for line in logs.for_request(response["X-Request-ID"]):
                tokens = parse_tokens(line)
                spans.add(tokens["span_id"])
                traces.add(tokens["trace_id"])
        assert len(spans) == 5 and len(traces) == 5


REFUSED_IDS = [
    "-",  # the files' "no request" marker: logtrace would skip the request
    "4111111111111111",  # a card number, written on every record
    "4111-1111-1111-1111",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",  # a JWT
    "-x",
    ".hidden",
]


@pytest.mark.parametrize("incoming", REFUSED_IDS)
def test_marker_and_secret_request_ids_are_refused(logs, incoming):
    response = Client().get("/t/plain/", HTTP_X_REQUEST_ID=incoming)
    rid = response["X-Request-ID"]
    assert rid != incoming
    uuid.UUID(rid)
    everything = logs.everything()
    assert f"request_id={incoming} " not in everything
    if len(incoming) > 8:
        assert incoming not in everything
    rejected = [line for line in logs.lines("security") if "request_id_rejected" in line]
    assert len(rejected) == 1 and f"request_id={rid} " in rejected[0]


def test_reused_request_id_is_flagged(logs):
    caches[obs_settings.SEEN_IDS_CACHE].clear()  # the IDs every worker saw (rolled back after)
    client = Client()
    client.get("/t/plain/", HTTP_X_REQUEST_ID="victim-0001")
    assert not [line for line in logs.lines("security") if "request_id_reused" in line]
    client.get("/t/plain/", HTTP_X_REQUEST_ID="victim-0001")
    reused = [line for line in logs.lines("security") if "request_id_reused" in line]
    assert len(reused) == 1
    assert "request_id=victim-0001 " in reused[0]
    spans = {parse_tokens(line)["span_id"] for line in logs.for_request("victim-0001")}
    assert len(spans) == 2  # two requests, told apart by their span IDs


class TestTrustOnlyFromProxies:
    @pytest.fixture
    def proxied(self, settings):
        settings.OBSERVABILITY = {
            **NOT_SLOW,
            "TRUST_INCOMING_REQUEST_ID": "proxies",
            "TRUSTED_PROXIES": ["10.0.0.0/8"],
        }

    def test_id_from_a_trusted_proxy_is_kept(self, logs, proxied):
        response = Client(REMOTE_ADDR="10.1.2.3").get("/t/plain/", HTTP_X_REQUEST_ID="gw-42")
        assert response["X-Request-ID"] == "gw-42"

    def test_id_from_anyone_else_is_ignored(self, logs, proxied):
        response = Client(REMOTE_ADDR="203.0.113.9").get("/t/plain/", HTTP_X_REQUEST_ID="gw-42")
        assert response["X-Request-ID"] != "gw-42"
        assert "gw-42" not in logs.everything()

    def test_proxies_mode_without_proxies_is_a_configuration_error(self):
        from observability.conf import validate

        problems = validate({"TRUST_INCOMING_REQUEST_ID": "proxies"})
        assert problems and "TRUSTED_PROXIES" in problems[0]


@pytest.mark.parametrize("method", ["4111111111111111", "GET /x HTTP/1.1", "A" * 40, "get\r\n"])
def test_method_that_is_not_an_http_token_is_logged_as_a_marker(logs, method):
    response = Client().generic(method, "/t/plain/")
    lines = logs.for_request(response["X-Request-ID"])
    assert lines
    for line in lines:
        assert parse_tokens(line)["method"] == "INVALID"
    assert "4111111111111111" not in logs.everything()


@pytest.mark.parametrize(
    "forwarded",
    [
        "fe80::1%request_id=VICTIM user_id=1",
        "fe80::1%4111111111111111",
        "fe80::1%" + "x" * 4096,
        "[fe80::1%evil zone]:443",
    ],
)
def test_zone_ids_never_carry_text_into_the_ip(logs, settings, forwarded):
    settings.OBSERVABILITY = {**NOT_SLOW, "TRUSTED_PROXIES": 1}
    response = Client(REMOTE_ADDR="10.0.0.1").get("/t/plain/", HTTP_X_FORWARDED_FOR=forwarded)
    started = next(line for line in logs.for_request(response["X-Request-ID"]) if "started" in line)
    assert "IP: 10.0.0.1," in started
    assert parse_tokens(started)["ip"] == "10.0.0.1"
    assert "VICTIM" not in logs.everything() and "4111111111111111" not in logs.everything()


def test_a_short_safe_zone_id_is_kept(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "TRUSTED_PROXIES": 1}
    response = Client(REMOTE_ADDR="10.0.0.1").get("/t/plain/", HTTP_X_FORWARDED_FOR="fe80::1%eth0")
    line = logs.for_request(response["X-Request-ID"])[0]
    assert parse_tokens(line)["ip"] == "fe80::1%eth0"
