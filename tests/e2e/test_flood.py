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
