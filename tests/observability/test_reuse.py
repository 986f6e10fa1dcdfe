"""A reused incoming request ID is flagged, whichever worker saw it first and whatever was sampled.

The memory of the IDs seen is Django's cache (OBSERVABILITY['SEEN_IDS_CACHE']), shared by every
worker and host; these tests read it where it lives (the database cache's table). The two
gunicorn workers are in tests/e2e/test_shared_state.py.
"""

from __future__ import annotations

import io
import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.management import call_command
from django.db import connection
from django.test import AsyncClient, Client
from freezegun import freeze_time

from observability.conf import obs_settings, validate
from observability.http import seen_ids as seen_ids_module
from observability.http.seen_ids import seen_ids
from observability.tracing.ids import new_ids
from tests.conftest import parse_tokens, token_for
from tests.polling import DEADLINE, wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.observability.urls_reuse")]

PAYMENT = {"amount": "12.50", "currency": "USD", "payment_method": "pm_card_visa"}
SECRET_A = "reuse-test-secret-a-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_B = "reuse-test-secret-b-0123456789abcdefghijklmnopqrstuvwxyz"


def unique_id(label: str) -> str:
    """An ID no other test (nor an earlier run on a kept database) has used, that can never
    read as a card number (12 hex digits after a letter: "q3-" + 12 decimal digits could)."""
    return f"{label}-x{uuid.uuid4().hex[:12]}"


def reused_events(logs, request_id: str) -> list[dict[str, str]]:
    """The request_id_reused events of one ID, as fields, from the security file."""
    return [
        parse_tokens(line)
        for line in logs.lines("security")
        if "event_type=request_id_reused " in line and f"request_id={request_id} " in line
    ]


def span_of(response: Any) -> str:
    """The request's own span ID, as the response's traceresponse header tells the client."""
    return str(response["traceresponse"].split("-")[2])


@pytest.fixture
def db_cache() -> str:
    """The table of the seen-IDs cache (a database cache in this suite, unless CACHE_URL is set)."""
    alias = obs_settings.SEEN_IDS_CACHE
    if not isinstance(caches[alias], DatabaseCache):
        pytest.skip("the seen-IDs cache is not the database cache here")
    return str(django_settings.CACHES[alias]["LOCATION"])


def cache_rows(table: str) -> list[tuple[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT cache_key, expires FROM {connection.ops.quote_name(table)}")
        return list(cursor.fetchall())


def test_reuse_of_a_sampled_out_request_is_flagged_with_the_first_requests_span(
    logs, settings, user
):
    """The victim's payment is sampled out; the attacker's 401 under its ID is flagged, and
    the event names the victim's span, so readers can tell the two stories apart."""
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "SAMPLE_RATE": 0.0}
    rid = unique_id("victim")
    victim = Client().post(
        "/api/v1/payments/",
        PAYMENT,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_for(user)}",
        HTTP_X_REQUEST_ID=rid,
    )
    assert victim.status_code == 201
    assert logs.for_request(rid) == []  # a fast success: sampled out
    assert reused_events(logs, rid) == []
    attacker = Client().get("/api/v1/payments/", HTTP_X_REQUEST_ID=rid)
    assert attacker.status_code == 401
    (event,) = reused_events(logs, rid)
    assert event["span_id"] == span_of(attacker)
    assert event["first_span_id"] == span_of(victim)
    assert event["header"] == "X-Request-ID"
    created = [line for line in logs.lines("general") if "payment_created" in line]
    assert len(created) == 1 and f"span_id={span_of(victim)} " in created[0]
    assert all(f"span_id={span_of(attacker)} " in line for line in logs.for_request(rid))


def test_every_further_use_in_the_window_is_flagged(logs):
    rid = unique_id("thrice")
    client = Client()
    spans = [span_of(client.get("/t/plain/", HTTP_X_REQUEST_ID=rid)) for _ in range(3)]
    events = reused_events(logs, rid)
    assert [event["span_id"] for event in events] == spans[1:]
    assert {event["first_span_id"] for event in events} == {spans[0]}


def test_the_memory_is_the_shared_cache_under_a_keyed_hash(logs, settings, db_cache):
    """Nothing is remembered in the process: the cache is the memory, and its keys are keyed
    hashes (never the client's ID, and another secret gives another key)."""
    rid = "Remember-Me-0042"
    settings.SECRET_KEY = SECRET_A
    before = {key for key, _ in cache_rows(db_cache)}
    Client().get("/t/plain/", HTTP_X_REQUEST_ID=rid)
    (key_a,) = {key for key, _ in cache_rows(db_cache)} - before
    caches[obs_settings.SEEN_IDS_CACHE].clear()
    # Forgotten with the cache: no copy of the ID stays in this process.
    Client().get("/t/plain/", HTTP_X_REQUEST_ID=rid)
    assert reused_events(logs, rid) == []
    settings.SECRET_KEY = SECRET_B
    caches[obs_settings.SEEN_IDS_CACHE].clear()
    Client().get("/t/plain/", HTTP_X_REQUEST_ID=rid)
    ((key_b, _),) = cache_rows(db_cache)
    assert key_a != key_b
    for key in (key_a, key_b):
        assert rid.lower() not in key.lower() and "0042" not in key


def test_the_window_bounds_the_memory(logs, settings, db_cache):
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "SEEN_IDS_WINDOW": 600}
    rid = unique_id("window")
    client = Client()
    before = set(cache_rows(db_cache))
    with freeze_time("2026-03-01 12:00:00") as clock:
        client.get("/t/plain/", HTTP_X_REQUEST_ID=rid)
        ((_, expires),) = set(cache_rows(db_cache)) - before
        clock.tick(599)
        client.get("/t/plain/", HTTP_X_REQUEST_ID=rid)
        assert len(reused_events(logs, rid)) == 1
        clock.tick(2)  # 601 s after the first use: forgotten, this use is a first one again
        third = client.get("/t/plain/", HTTP_X_REQUEST_ID=rid)
        assert len(reused_events(logs, rid)) == 1
        clock.tick(1)
        client.get("/t/plain/", HTTP_X_REQUEST_ID=rid)
    events = reused_events(logs, rid)
    assert len(events) == 2 and events[1]["first_span_id"] == span_of(third)
    assert "2026-03-01 12:10:00" in str(expires)  # the entry's expiry: the window, not forever


def one_window() -> Any:
    """A clock frozen at the start of an hour of its own, years ahead. A client's quota counts
    per window of SEEN_IDS_WINDOW (an hour) on the clock: on the real clock a test crossing
    an hour's end would count in two windows. Ahead of the real clock, every entry earlier
    tests left in the caches has expired; an hour drawn at random, so that a kept database's
    counts from an earlier run are in another window."""
    hour = random.SystemRandom().randrange(24 * 365 * 50)
    return freeze_time(datetime(2040, 1, 1, tzinfo=UTC) + timedelta(hours=hour))


def quota_events(logs) -> list[dict[str, str]]:
    return [
        parse_tokens(line)
        for line in logs.lines("security")
        if "event_type=request_id_quota_exceeded " in line
    ]


def test_one_client_cannot_push_another_clients_id_out_of_the_cache(logs, settings, db_cache):
    """A small table (30 rows): one client sending 300 new IDs used to make the database
    cache delete a third of its rows again and again, the victim's ID among them, so a reuse
    of it went unflagged. Held to 20 IDs a window, the client never fills the table."""
    settings.CACHES = {
        **settings.CACHES,
        obs_settings.SEEN_IDS_CACHE: {
            **settings.CACHES[obs_settings.SEEN_IDS_CACHE],
            "OPTIONS": {"MAX_ENTRIES": 30},
        },
    }
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "SEEN_IDS_PER_CLIENT": 20}
    seen_ids_module.id_quota.forget()
    victim_id = unique_id("victim")
    with one_window():
        victim = Client(REMOTE_ADDR="198.51.100.7").get("/t/plain/", HTTP_X_REQUEST_ID=victim_id)
        attacker = Client(REMOTE_ADDR="2001:db8:1:2::1")
        for n in range(300):
            # Addresses rotated inside one /64 are one client.
            attacker.get(
                "/t/plain/",
                HTTP_X_REQUEST_ID=unique_id(f"flood{n}"),
                REMOTE_ADDR=f"2001:db8:1:2::{n:x}",
            )
        attacker.get("/t/plain/", HTTP_X_REQUEST_ID=victim_id)
    events = reused_events(logs, victim_id)
    assert [event["first_span_id"] for event in events] == [span_of(victim)]
    assert quota_events(logs), "the client past its quota is a security event"
    assert len(cache_rows(db_cache)) <= 30


def test_the_quota_is_per_client_and_held_over_every_process(logs, settings):
    """The counts are in their own shared cache: a process that starts later (a new worker)
    reads them; another client keeps its own quota."""
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "SEEN_IDS_PER_CLIENT": 3}
    seen_ids_module.id_quota.forget()
    first = Client(REMOTE_ADDR="203.0.113.9")
    with one_window():
        for n in range(3):
            first.get("/t/plain/", HTTP_X_REQUEST_ID=unique_id(f"q{n}"))
        assert not quota_events(logs)
        seen_ids_module.id_quota.forget()  # as a new worker: nothing known but the cache
        over = first.get("/t/plain/", HTTP_X_REQUEST_ID=unique_id("q3"))
        (event,) = quota_events(logs)
        assert event["request_id"] == over["X-Request-ID"] and event["quota"] == "3"
        Client(REMOTE_ADDR="203.0.113.10").get("/t/plain/", HTTP_X_REQUEST_ID=unique_id("other"))
    assert len(quota_events(logs)) == 1


def test_requests_without_an_incoming_id_never_reach_the_cache(logs, monkeypatch):
    """Server-made IDs come from the CSPRNG: they are never looked up, and cost nothing."""
    backend = type(caches[obs_settings.SEEN_IDS_CACHE])
    calls: list[str] = []
    for name in ("add", "get", "set", "has_key"):
        original = getattr(backend, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(backend, name, counted)
    client = Client()
    for _ in range(50):
        assert client.get("/t/plain/").status_code == 200
    assert calls == []
    client.get("/t/plain/", HTTP_X_REQUEST_ID=unique_id("counted"))
    # A first use: one slot of the client's quota (SEEN_IDS_PER_CLIENT), one atomic add of
    # the ID; a get only when one fails.
    assert calls == ["add", "add"]


@pytest.mark.parametrize(
    "broken",
    [
        {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "no_such_cache_table",
        },
        {  # nothing listens on port 9 (discard) here: refused at once
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        },
    ],
    ids=["database-table-missing", "redis-down"],
)
def test_a_failing_cache_costs_the_check_never_the_request(logs, settings, user, capfd, broken):
    settings.CACHES = {**settings.CACHES, "broken": broken}
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "SEEN_IDS_CACHE": "broken"}
    rid = unique_id("cache-down")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user)}", "HTTP_X_REQUEST_ID": rid}
    client = Client()
    for _ in range(2):
        response = client.post(
            "/api/v1/payments/", PAYMENT, content_type="application/json", **auth
        )
        assert response.status_code == 201, response.content
        assert response["X-Request-ID"] == rid
    # The request's own transaction was not harmed: both payments are there.
    assert client.get("/api/v1/payments/", **auth).json()["count"] == 2
    assert reused_events(logs, rid) == []
    err = capfd.readouterr().err
    reports = [line for line in err.splitlines() if "reuse" in line]
    assert len(reports) == 1, err  # once per minute, not once per request
    assert "observability:" in reports[0] and "'broken'" in reports[0]
    assert rid not in err


@pytest.mark.django_db(transaction=True)
def test_a_view_whose_transaction_rolls_back_leaves_its_id_remembered(logs, settings, db_cache):
    """@log_api_request alone, inside the view's atomic block: the cache write is not part of
    the view's transaction, so the rollback does not undo it."""
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "ENABLED": False}
    rid = unique_id("rolled-back")
    client = Client(raise_request_exception=False)
    first = client.get("/t/rolled-back/?username=first-writer", HTTP_X_REQUEST_ID=rid)
    assert first.status_code == 500
    assert not get_user_model().objects.filter(username="first-writer").exists()  # rolled back
    # This ID's own row (a count of all rows would see other tests' helper threads too)
    key = caches[obs_settings.SEEN_IDS_CACHE].make_key(seen_ids_module.cache_key(rid))
    wait_for(lambda: key in {row[0] for row in cache_rows(db_cache)}, "the first use remembered")
    client.get("/t/rolled-back/?username=second-writer", HTTP_X_REQUEST_ID=rid)
    (event,) = wait_for(lambda: reused_events(logs, rid), "the reuse flagged")
    assert event["request_id"] == rid and event["first_span_id"] != event["span_id"]


@pytest.mark.django_db(transaction=True)
async def test_reuse_is_flagged_on_an_event_loop(logs, settings):
    """Under ASGI with a fully async middleware chain the request runs on the event loop, where
    the database may not be called: the helper thread checks, and writes the event."""
    settings.MIDDLEWARE = ["observability.middleware.RequestLoggingMiddleware"]
    rid = unique_id("asgi")
    client = AsyncClient()
    first = await client.get("/t/async/", headers={"X-Request-ID": rid})
    second = await client.get("/t/async/", headers={"X-Request-ID": rid})
    assert first["X-Request-ID"] == second["X-Request-ID"] == rid
    (event,) = wait_for(lambda: reused_events(logs, rid), "the reuse flagged")
    assert event["span_id"] == span_of(second)
    assert event["first_span_id"] == span_of(first)
    assert event["request_id"] == rid


class BlockingCache(LocMemCache):
    """A cache whose add() hangs until the test lets it go: a cache server that stopped answering."""

    entered = threading.Event()
    gate = threading.Event()

    def add(self, *args: Any, **kwargs: Any) -> bool:
        type(self).entered.set()
        type(self).gate.wait(2 * DEADLINE)
        return super().add(*args, **kwargs)


async def test_a_hung_cache_neither_holds_requests_on_an_event_loop_nor_queues_without_bound(
    logs, settings, monkeypatch, capfd
):
    settings.MIDDLEWARE = ["observability.middleware.RequestLoggingMiddleware"]
    settings.CACHES = {
        **settings.CACHES,
        "hung": {"BACKEND": f"{__name__}.BlockingCache", "LOCATION": unique_id("hung")},
    }
    settings.OBSERVABILITY = {
        **settings.OBSERVABILITY,
        "SEEN_IDS_CACHE": "hung",
        "SEEN_IDS_QUOTA_CACHE": None,  # the clients' counts in the hung cache too
    }
    monkeypatch.setattr(seen_ids_module, "MAX_PENDING", 5)
    BlockingCache.entered.clear()
    BlockingCache.gate.clear()
    client = AsyncClient()
    try:
        first = await client.get("/t/async/", headers={"X-Request-ID": unique_id("hung")})
        assert first.status_code == 200
        assert BlockingCache.entered.wait(DEADLINE)  # the helper thread is stuck in the cache
        lost = seen_ids.lost
        for _ in range(20):
            response = await client.get("/t/async/", headers={"X-Request-ID": unique_id("hung")})
            assert response.status_code == 200  # answered, though the cache hangs
        assert seen_ids.lost - lost == 15  # 5 checks wait; the others are dropped, counted
    finally:
        BlockingCache.gate.set()
    assert seen_ids.wait(DEADLINE)
    err = capfd.readouterr().err
    assert "cache 'hung' failed (helper thread behind)" in err


class RetriedAddCache(LocMemCache):
    """add() stores the entry, then answers False: what a client library that re-sends a
    SET NX after a timeout (the first one applied) reports."""

    def add(self, *args: Any, **kwargs: Any) -> bool:
        super().add(*args, **kwargs)
        return False


def test_a_first_use_the_cache_reports_twice_is_not_its_own_reuse(logs, settings):
    settings.CACHES = {
        **settings.CACHES,
        "retried": {"BACKEND": f"{__name__}.RetriedAddCache", "LOCATION": unique_id("retried")},
    }
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "SEEN_IDS_CACHE": "retried"}
    rid = unique_id("retried")
    first = Client().get("/t/plain/", HTTP_X_REQUEST_ID=rid)
    assert reused_events(logs, rid) == []
    second = Client().get("/t/plain/", HTTP_X_REQUEST_ID=rid)
    ((event),) = reused_events(logs, rid)
    assert event["span_id"] == span_of(second) and event["first_span_id"] == span_of(first)


class TestSettings:
    def test_seen_ids_cache_must_name_a_cache(self):
        (problem,) = validate({"SEEN_IDS_CACHE": "nowhere"})
        assert "OBSERVABILITY['SEEN_IDS_CACHE']" in problem and "'nowhere'" in problem
        assert "CACHES" in problem
        assert validate({"SEEN_IDS_CACHE": None}) == []

    @pytest.mark.parametrize("value", [0, -1, "1h", True, 10**9])
    def test_seen_ids_window_must_be_a_bounded_number_of_seconds(self, value):
        (problem,) = validate({"SEEN_IDS_WINDOW": value})
        assert "OBSERVABILITY['SEEN_IDS_WINDOW']" in problem and repr(value) in problem

    def test_none_turns_the_check_off(self, logs, settings, monkeypatch):
        settings.OBSERVABILITY = {**settings.OBSERVABILITY, "SEEN_IDS_CACHE": None}
        rid = unique_id("off")
        for _ in range(2):
            assert Client().get("/t/plain/", HTTP_X_REQUEST_ID=rid).status_code == 200
        assert reused_events(logs, rid) == []


# ---------------------------------------------------------------------------- traceparents


def trace_events(logs, request_id: str) -> list[dict[str, str]]:
    return [
        parse_tokens(line)
        for line in logs.lines("security")
        if "event_type=traceparent_reused " in line and f"request_id={request_id} " in line
    ]


def test_a_reused_traceparent_of_a_sampled_out_request_is_flagged(logs, settings, user):
    """A caller makes a new span for each call: the victim's (trace, parent span) sent again
    by another client, under a request ID of its own, is flagged with the victim's span,
    though the victim's request was sampled out."""
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "SAMPLE_RATE": 0.0}
    trace = new_ids()[1]  # random, and never card-like (else refused: 0.6%)
    header = f"00-{trace}-00f067aa0ba902b7-00"  # the caller did not sample it either
    victim = Client(REMOTE_ADDR="198.51.100.7").post(
        "/api/v1/payments/",
        PAYMENT,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_for(user)}",
        HTTP_TRACEPARENT=header,
    )
    assert victim.status_code == 201
    assert logs.for_request(victim["X-Request-ID"]) == []  # sampled out
    attacker = Client(REMOTE_ADDR="203.0.113.9").get("/api/v1/payments/", HTTP_TRACEPARENT=header)
    assert attacker.status_code == 401
    (event,) = trace_events(logs, attacker["X-Request-ID"])
    assert event["first_span_id"] == span_of(victim) and event["header"] == "traceparent"
    assert event["trace_id"] == trace and event["ip"] == "203.0.113.9"
    # The story of the attacker's request says so, in logtrace and in the viewer.
    out = io.StringIO()
    call_command("logtrace", attacker["X-Request-ID"], "--dir", str(logs.path), stdout=out)
    assert "the server saw this traceparent sent again: traceparent_reused at" in out.getvalue()


def test_a_new_span_of_the_same_trace_is_no_reuse(logs):
    trace = new_ids()[1]  # random, and never card-like (else refused: 0.6%)
    for parent in ("00f067aa0ba902b7", "00f067aa0ba902b8"):
        response = Client().get("/t/plain/", HTTP_TRACEPARENT=f"00-{trace}-{parent}-01")
        assert response["traceresponse"].split("-")[1] == trace
    assert "traceparent_reused" not in logs.text("security")


def test_the_viewer_says_a_traceparent_was_reused(logs, settings, admin_client):
    settings.LOG_BASE_DIR = str(logs.path)
    header = f"00-{new_ids()[1]}-00f067aa0ba902b7-01"
    Client().get("/t/plain/", HTTP_TRACEPARENT=header)
    second = Client().get("/t/plain/", HTTP_TRACEPARENT=header)
    assert logs.lines("security")
    page = admin_client.get(f"/ops/requests/{second['X-Request-ID']}/")
    assert page.status_code == 200
    text = " ".join(page.content.decode().split())
    assert "ID reused" in text and "traceparent_reused at" in text
