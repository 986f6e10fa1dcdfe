"""Floods of Django's own security records through a real gunicorn with two workers.

Django logs a forged Host on `django.security.DisallowedHost` and a missing CSRF token on
`django.security.csrf`, children of the guarded `django.security`. Each worker counts its
own records, so a window holds at most workers x (FLOOD_LIMIT + 1) lines per key, and
the lines written one by one plus the `repeated=` counts equal the requests sent.
"""

from __future__ import annotations

import http.client
import re
from pathlib import Path

import pytest

from tests.e2e.servers import Server, gunicorn, read_all

pytestmark = pytest.mark.e2e

WORKERS = 2
LIMIT = 3
REQUESTS = 300


def send(server: Server, method: str, path: str, headers: dict[str, str]) -> int:
    """One request with exactly these headers (a forged Host included)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.endheaders(b"" if method == "POST" else None)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def story(lines: list[str], logger: str) -> tuple[int, int, list[str]]:
    """(records the lines stand for, lines, processes that wrote them) of one logger."""
    mine = [line for line in lines if f" [{logger}] " in line]
    summaries = [line for line in mine if " repeated=" in line]
    assert all(" ip=127.0.0.1 " in line for line in summaries), summaries
    repeated = sum(int(re.search(r" repeated=(\d+) ", line).group(1)) for line in summaries)
    processes = sorted({re.search(r" process=(\d+)", line).group(1) for line in mine})
    return len(mine) - len(summaries) + repeated, len(mine), processes


@pytest.mark.parametrize("flood", ["host", "csrf"])
def test_a_flood_of_djangos_security_records_is_bounded_per_worker_and_exact(tmp_path, env, flood):
    # A window far longer than the test: it cannot end on a slow machine; SIGTERM drains.
    env.update(FLOOD_LIMIT=str(LIMIT), FLOOD_WINDOW="3600")
    server = gunicorn(tmp_path, "-w", str(WORKERS), env=env)
    try:
        if flood == "host":
            logger, status = "django.security.DisallowedHost", 400

            def call(n):
                return send(server, "GET", "/api/v1/plans/", {"Host": f"evil{n}.example"})
        else:
            logger, status = "django.security.csrf", 403

            def call(n):
                return send(
                    server,
                    "POST",
                    "/admin/login/",
                    {"Host": "127.0.0.1", "Content-Length": "0"},
                )

        assert set(server.many(REQUESTS, 16, call)) == {status}
    finally:
        assert server.stop() == 0  # SIGTERM: each worker writes its pending summaries
    log_dir = Path(env["LOG_BASE_DIR"])
    security = read_all(log_dir, "billing_api_security.log")
    records, lines, processes = story(security, logger)
    assert records == REQUESTS
    assert lines <= WORKERS * (LIMIT + 1), lines
    assert len(processes) == WORKERS, processes  # both workers took part of the flood
    if flood == "host":  # ERROR: the errors file tells the same story, as exactly
        records, lines, _ = story(read_all(log_dir, "billing_api_errors.log"), logger)
        assert records == REQUESTS and lines <= WORKERS * (LIMIT + 1)
    # every request is still in the requests file (lifecycle lines are never summarised)
    requests = read_all(log_dir, "billing_api_requests.log")
    assert len([line for line in requests if f"Status: {status}" in line]) == REQUESTS


def test_a_botnet_through_two_workers_writes_the_global_budget_in_all_and_exact_counts(
    tmp_path, env
):
    """300 clients in 300 networks (X-Forwarded-For, the test being the trusted proxy), each
    one failed API call: each is a key of its own, but the two workers share one global
    budget in the database cache, so exactly FLOOD_GLOBAL_LIMIT events are written one by
    one in all, and the summaries count the rest."""
    env.update(
        FLOOD_LIMIT=str(LIMIT),
        FLOOD_WINDOW="3600",
        FLOOD_GLOBAL_LIMIT="40",
        TRUSTED_PROXIES="1",
    )
    server = gunicorn(tmp_path, "-w", str(WORKERS), env=env)
    try:

        def call(n):
            return send(
                server,
                "GET",
                "/api/v1/plans/",
                {"Host": "127.0.0.1", "X-Forwarded-For": f"10.{n >> 8}.{n & 0xFF}.1"},
            )

        assert set(server.many(REQUESTS, 16, call)) == {401}
    finally:
        assert server.stop() == 0
    security = read_all(Path(env["LOG_BASE_DIR"]), "billing_api_security.log")
    mine = [line for line in security if "event_type=authentication_failed " in line]
    summaries = [line for line in mine if " repeated=" in line]
    one_by_one = [line for line in mine if " repeated=" not in line]
    assert len(one_by_one) == 40  # over both workers: the budget is shared
    # Both workers took part: each wrote lines or a summary of what the budget refused.
    assert len({re.search(r" process=(\d+)", line).group(1) for line in mine}) == WORKERS
    repeated = sum(int(re.search(r" repeated=(\d+) ", line).group(1)) for line in summaries)
    assert len(one_by_one) + repeated == REQUESTS
    assert all(" client=* " in line for line in summaries)
