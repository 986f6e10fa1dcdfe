"""The database goes away under a real gunicorn: clear 503s in the one shape, then recovery.

A throwaway PostgreSQL (initdb in a temp dir, a free port) is stopped mid-run and started
again; a server pointed at a closed port never had one. Clients see 503 with the error body
and their request ID, never a 500; the errors file has one record with the traceback per
failed request.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from observability.logtrace import parse_line
from tests.e2e.postgres import ThrowawayPostgres, server_binaries, wait_until_down
from tests.e2e.servers import free_port, gunicorn, prepare_db, read_all, server_env

pytestmark = pytest.mark.e2e

PAY = {"amount": "5.00", "currency": "USD", "payment_method": "pm_card_visa"}


@pytest.fixture
def throwaway_postgres():
    binaries = server_binaries()
    if binaries is None:
        message = "no initdb/pg_ctl on this machine (install PostgreSQL's server package)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    server = ThrowawayPostgres(free_port(), binaries)
    try:
        yield server
    finally:
        server.destroy()


def assert_unavailable(status: int, headers, raw: bytes, request_id: str) -> None:
    assert status == 503, raw
    assert headers["X-Request-ID"] == request_id
    assert headers["Retry-After"] == "1"
    error = json.loads(raw)["error"]
    assert (error["status"], error["code"], error["request_id"]) == (
        503,
        "database_unavailable",
        request_id,
    )


def tracebacks_by_request(log_dir: Path) -> Counter:
    """How many errors-file records with a traceback each request ID has."""
    counts: Counter = Counter()
    for line in read_all(log_dir, "billing_api_errors.log"):
        record = parse_line(line)
        if record is not None and record.traceback:
            counts[record.fields.get("request_id")] += 1
    return counts


def test_postgres_stopped_mid_run_is_503_then_the_api_recovers(tmp_path, throwaway_postgres):
    pg = throwaway_postgres
    env = server_env(tmp_path, DATABASE_URL=pg.url)
    prepare_db(env)
    server = gunicorn(tmp_path, "-w", "2", "--worker-class", "gthread", "--threads", "2", env=env)
    try:
        token = server.token()

        def pay(rid: str):
            return server.request(
                "POST", "/api/v1/payments/", PAY, token, headers={"X-Request-ID": rid}
            )

        before = server.many(8, 4, lambda n: pay(f"up-{n}")[0])
        assert before == [201] * 8

        pg.stop()
        wait_until_down(pg.url)
        down = {}

        def call_while_down(n: int):
            rid = f"down-{n}"
            if n % 2:
                down[rid] = pay(rid)
            else:
                down[rid] = server.request(
                    "GET", "/api/v1/payments/", token=token, headers={"X-Request-ID": rid}
                )

        server.many(12, 4, call_while_down)
        health_status, _, health_body = server.request("GET", "/health/")

        pg.start()
        after = server.many(8, 4, lambda n: pay(f"back-{n}")[0])
    finally:
        assert server.stop() == 0
    for rid, (status, headers, raw) in down.items():
        assert_unavailable(status, headers, raw, rid)
    assert health_status == 503
    assert json.loads(health_body)["database"] == "down"
    assert after == [201] * 8, "the API recovers by itself once the database is back"

    log_dir = Path(env["LOG_BASE_DIR"])
    tracebacks = tracebacks_by_request(log_dir)
    for rid in down:
        assert tracebacks[rid] == 1, rid
    errors = [parse_line(line) for line in read_all(log_dir, "billing_api_errors.log")]
    mine = [r for r in errors if r and r.logger == "billing.exception_handler"]
    assert len(mine) == len(down)
    assert all(r.message.startswith("Database error answered with 503") for r in mine)
    assert all(r.fields["request_id"].startswith("down-") for r in mine)
    assert all(r.fields["username"] in {"-", "alice"} for r in mine)
    # no 500 anywhere, and each failed request's terminal line says 503
    statuses = Counter()
    for line in read_all(log_dir, "billing_api_requests.log"):
        record = parse_line(line)
        if record and "status" in record.fields and record.message.startswith("API Request"):
            statuses[record.fields["status"]] += 1
    assert statuses == {"200": 1, "201": 16, "503": 12}, statuses  # token, payments, outage


def test_unreachable_postgres_from_the_start_is_503_never_500(tmp_path):
    from django.conf import settings
    from rest_framework_simplejwt.tokens import AccessToken

    closed = free_port()  # bound and released: nothing listens there
    env = server_env(
        tmp_path,
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed}/billing",
        SECRET_KEY=settings.SECRET_KEY,  # so that this process can sign a real JWT for it
    )
    server = gunicorn(tmp_path, "-w", "2", env=env, ready=(503,))
    token = AccessToken()
    token["user_id"] = 1
    try:
        login = server.request(
            "POST",
            "/api/v1/auth/token/",
            {"username": "alice", "password": "alice-demo-pass"},
            headers={"X-Request-ID": "closed-login"},
        )
        calls = {
            f"closed-{n}": server.request(
                "GET" if n % 2 else "POST",
                "/api/v1/payments/",
                None if n % 2 else PAY,
                str(token),
                headers={"X-Request-ID": f"closed-{n}"},
            )
            for n in range(6)
        }
    finally:
        server.stop()
    assert_unavailable(*login, "closed-login")
    for rid, response in calls.items():
        assert_unavailable(*response, rid)
    tracebacks = tracebacks_by_request(Path(env["LOG_BASE_DIR"]))
    for rid in ["closed-login", *calls]:
        assert tracebacks[rid] == 1, rid
