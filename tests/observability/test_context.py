"""Context isolation: concurrent async requests, threads, pools, sync_to_async, the helpers."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import AsyncClient, Client

from observability import bind, carry_context, get_context, get_request_id, request_context
from observability.tracing.context import CONTEXT_FIELDS
from tests.conftest import parse_tokens, token_for

pytestmark = [pytest.mark.urls("tests.urls")]
logger = logging.getLogger("billing.views")


async def test_200_concurrent_async_requests_keep_their_own_ids(logs, settings):
    # 200 requests interleaved on a loaded machine can each take over a second: no slow
    # lines here, only the two lifecycle lines of each request are counted.
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "SLOW_REQUEST_THRESHOLD": 3600}
    client = AsyncClient()
    ids = [f"req-{n:03d}" for n in range(200)]
    responses = await asyncio.gather(
        *(client.get("/t/async/?gap=0.01", headers={"X-Request-ID": rid}) for rid in ids)
    )
    assert [r["X-Request-ID"] for r in responses] == ids
    assert [r.json()["context"]["request_id"] for r in responses] == ids
    by_id: dict[str, list[str]] = {}
    for line in logs.lines("general"):
        if "async view" in line:
            by_id.setdefault(parse_tokens(line)["request_id"], []).append(line)
    assert set(by_id) == set(ids)
    for rid, lines in by_id.items():
        assert len(lines) == 2, (rid, lines)  # before and after the awaited gap
    requests = logs.lines("requests")
    for rid in ids:
        assert sum(f"request_id={rid} " in line for line in requests) == 2, [
            line[:160] for line in requests if f"request_id={rid} " in line
        ]


@pytest.mark.django_db(transaction=True)
async def test_concurrent_async_requests_with_different_users(logs, user, other_user):
    client = AsyncClient()
    tokens = {user.username: token_for(user), other_user.username: token_for(other_user)}
    calls = []
    for n in range(40):
        name = "john_doe" if n % 2 else "mallory"
        calls.append(
            client.get(
                "/t/whoami/",
                headers={"X-Request-ID": f"u-{n}", "Authorization": f"Bearer {tokens[name]}"},
            )
        )
    responses = await asyncio.gather(*calls)
    for n, response in enumerate(responses):
        expected = "john_doe" if n % 2 else "mallory"
        assert response.json()["context"]["username"] == expected
    for line in logs.lines("general"):
        if "whoami for" in line:
            tokens_ = parse_tokens(line)
            assert tokens_["username"] in line.split(" | ")[0]  # the record's own user


async def test_a_requests_context_holds_every_field_in_their_order(logs):
    response = await AsyncClient().get("/t/async/", headers={"X-Request-ID": "order-1"})
    context = response.json()["context"]
    assert list(context) == list(CONTEXT_FIELDS)
    assert context["request_id"] == "order-1"
    assert context["user_id"] == context["username"] == "-"


async def test_sync_to_async_view_part_sees_the_request_context(logs):
    response = await AsyncClient().get("/t/async-sync/", headers={"X-Request-ID": "s2a-1"})
    assert response.json()["request_id"] == "s2a-1"
    assert any("s2a-1" in line and "sync part" in line for line in logs.lines("general"))


@pytest.mark.django_db(transaction=True)
def test_thread_pool_reused_across_requests_has_no_stale_context(logs, user):
    """Requests served by a reused pool (like gthread workers) never see another's context."""
    client_user = Client(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    client_anon = Client()
    sqlite_lock = threading.Lock()  # the in-memory test database takes one writer at a time

    def call(n: int) -> tuple[str, dict]:
        client = client_user if n % 2 else client_anon
        path = "/t/whoami/" if n % 2 else "/t/plain/"
        with sqlite_lock:
            response = client.get(path, HTTP_X_REQUEST_ID=f"pool-{n}")
        leftover = get_context()  # what the worker thread holds after the request
        return response["X-Request-ID"], leftover

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(call, range(40)))
    for n, (rid, leftover) in enumerate(results):
        assert rid == f"pool-{n}"
        assert leftover["request_id"] == "-" and leftover["user_id"] == "-"
    for line in logs.lines("requests"):
        tokens = parse_tokens(line)
        n = int(tokens["request_id"].split("-")[1])
        if n % 2 == 0:
            assert tokens["user_id"] == "-", line


def test_carry_context_into_thread_and_absent_without(logs):
    seen = {}
    with request_context(request_id="job-1", job="nightly"):
        bind(payment_id=7)

        def work(tag):
            seen[tag] = get_context()
            logger.info("in thread %s", tag)

        carried = threading.Thread(target=carry_context(work), args=("carried",))
        bare = threading.Thread(target=work, args=("bare",))
        carried.start(), bare.start()
        carried.join(), bare.join()
    assert seen["carried"]["request_id"] == "job-1"
    assert seen["carried"]["payment_id"] == 7
    assert seen["bare"]["request_id"] == "-"
    lines = logs.lines("general")
    assert any(
        "in thread carried" in line and "request_id=job-1 " in line and "job=nightly" in line
        for line in lines
    )
    assert any("in thread bare" in line and "request_id=- " in line for line in lines)


def test_carry_context_into_reused_pool_thread():
    with ThreadPoolExecutor(max_workers=1) as pool:
        with request_context(request_id="first"):
            assert pool.submit(carry_context(get_request_id)).result() == "first"
        with request_context(request_id="second"):
            assert pool.submit(carry_context(get_request_id)).result() == "second"
        assert pool.submit(get_request_id).result() == "-"


def test_request_context_resets_and_nests():
    assert get_request_id() == "-"
    with request_context(request_id="outer"):
        with request_context() as inner:
            assert inner["request_id"] not in {"outer", "-"}
        assert get_request_id() == "outer"
    assert get_request_id() == "-"


def test_outside_request_records_have_dash_fields(logs):
    logger.info("startup record")
    line = next(line for line in logs.lines("general") if "startup record" in line)
    tokens = parse_tokens(line)
    for key in ("request_id", "user_id", "username", "ip", "method", "path"):
        assert tokens[key] == "-"


def test_explicit_extra_wins_over_context_and_never_raises(logs):
    """The seed's own example passes request_id and user_id through extra."""
    with request_context(request_id="ctx-id"):
        logger.info("Starting complex operation", extra={"request_id": "mine", "user_id": 123})
    line = next(line for line in logs.lines("general") if "complex operation" in line)
    assert "request_id=mine user_id=123 " in line
