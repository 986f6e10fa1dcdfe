"""Login throttles through a real gunicorn with two workers: one budget in total, not per worker.

The counts live in the database cache every worker shares (prepare_db runs
createcachetable). Concurrent bursts keep both workers busy, so each burst is spread over
both processes (checked from the events' process= fields), and the number of password
checks allowed is exactly the configured limit.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import parse_tokens
from tests.e2e.servers import gunicorn, prepare_db, read_all, server_env
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

USERNAME_LIMIT, CLIENT_LIMIT = 5, 12
DAY = 86400


@pytest.fixture
def server(tmp_path):
    env = server_env(
        tmp_path,
        LOGIN_THROTTLE_USERNAME_RATE=f"{USERNAME_LIMIT}/day",
        LOGIN_THROTTLE_CLIENT_RATE=f"{CLIENT_LIMIT}/day",
    )
    prepare_db(env)
    running = gunicorn(tmp_path, "-w", "2", env=env)
    running.log_dir = Path(env["LOG_BASE_DIR"])
    yield running
    running.stop()


def call(server, method: str, path: str, *, source: str, body: bytes = b"", headers=None):
    """(status, headers, body) of one request from a chosen loopback address."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", server.port, timeout=60, source_address=(source, 0)
    )
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def token_attempt(server, source: str, username: str, password: str = "wrong-guess"):
    body = json.dumps({"username": username, "password": password}).encode()
    headers = {"Content-Type": "application/json"}
    return call(server, "POST", "/api/v1/auth/token/", source=source, body=body, headers=headers)


class AdminForm:
    """The admin's login form as a browser holds it: the CSRF cookie and the form's token."""

    def __init__(self, server, source: str) -> None:
        self.server, self.source = server, source
        status, headers, page = call(server, "GET", "/admin/login/", source=source)
        assert status == 200
        cookie = re.search(r"csrftoken=([^;]+)", headers["Set-Cookie"]).group(1)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        self.cookie, self.token = cookie, html.unescape(token.decode())

    def attempt(self, username: str, password: str = "wrong-guess"):
        body = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": self.token,
                "username": username,
                "password": password,
                "next": "/ops/requests/",
            }
        ).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={self.cookie}",
        }
        return call(
            self.server, "POST", "/admin/login/", source=self.source, body=body, headers=headers
        )


def burst(count: int, attempt) -> list[tuple[int, object, bytes]]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(attempt, range(count)))


def statuses(results) -> dict[int, int]:
    counted: dict[int, int] = {}
    for status, _, _ in results:
        counted[status] = counted.get(status, 0) + 1
    return counted


def security_events(log_dir: Path, source: str, expected: dict[str, int]) -> list[dict]:
    """This client's login events, once at least `expected` of each type are on disk."""

    def written() -> list[dict] | None:
        events = [
            parse_tokens(line)
            for line in read_all(log_dir, "billing_api_security.log")
            if f"ip={source} " in line and "login_" in line
        ]
        found = {kind: sum(e["event_type"] == kind for e in events) for kind in expected}
        return events if all(found[kind] >= n for kind, n in expected.items()) else None

    return wait_for(written, f"the login events {expected} of {source} in the security file")


def hammer(server, source: str):
    """From one client: 24 guesses at alice (API), 24 at admin (admin page), 10 usernames."""
    form = AdminForm(server, source)
    api = burst(24, lambda _: token_attempt(server, source, "alice"))
    admin = burst(24, lambda _: form.attempt("admin"))
    spray = burst(10, lambda n: token_attempt(server, source, f"nobody{n}"))
    return api, admin, spray


def test_two_workers_share_one_login_budget_for_the_api_and_the_admin(server):
    # The windows are whole days (UTC): if a run crosses midnight, it runs again, from
    # another address, inside the new day.
    for source in ("127.0.0.2", "127.0.0.3"):
        day = int(time.time() // DAY)
        api, admin, spray = hammer(server, source)
        if int(time.time() // DAY) == day:
            break
    # Per (username, client): 5 password checks for alice and 5 for admin, whichever
    # worker took them; the rest refused with a 429 and a Retry-After.
    assert statuses(api) == {401: USERNAME_LIMIT, 429: 24 - USERNAME_LIMIT}
    assert statuses(admin) == {200: USERNAME_LIMIT, 429: 24 - USERNAME_LIMIT}
    # Per client: 12 in all, so 2 of the 10 other usernames were checked.
    assert statuses(spray) == {401: CLIENT_LIMIT - 2 * USERNAME_LIMIT, 429: 8}
    for status, headers, _ in api + admin + spray:
        if status == 429:
            assert int(headers["Retry-After"]) >= 1
    refused = next(json.loads(body) for status, _, body in api if status == 429)
    assert refused["error"]["code"] == "login_throttled"
    page = next(body.decode() for status, _, body in admin if status == 429)
    assert "Too many login attempts for this username from your address." in page

    events = security_events(
        server.log_dir,
        source,
        {"login_failed": 7, "admin_login_failed": 5, "login_throttled": 1},
    )
    workers = {event["process"] for event in events}
    assert len(workers) == 2, workers  # both workers served this client
    assert sum(e["event_type"] == "login_failed" for e in events) == 7
    assert sum(e["event_type"] == "admin_login_failed" for e in events) == 5

    # Meanwhile the real users, at their own address, log in at once.
    status, _, body = token_attempt(server, "127.0.0.1", "alice", "alice-demo-pass")
    assert status == 200, body
    status, headers, _ = AdminForm(server, "127.0.0.1").attempt("admin", "admin-demo-pass")
    assert status == 302 and headers["Location"] == "/ops/requests/"
