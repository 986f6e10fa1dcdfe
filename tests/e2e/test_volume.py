"""At volume, through real servers: exact metrics over 4 workers, a login flood, in-flight requests."""

from __future__ import annotations

import http.client
import re
import signal
import threading
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.servers import Server, gunicorn, prepare_db, read_all, server_env, uvicorn
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

PAYMENT = "api/v1/payments/<int:pk>/"
GENERAL = "billing_api.log"
REQUESTS = "billing_api_requests.log"


@pytest.fixture
def env(tmp_path):
    environment = server_env(tmp_path)
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    prepare_db(environment)
    return environment


def get(server: Server, path: str, *, source: str = "127.0.0.1", headers: dict | None = None):
    """A GET from a chosen loopback address (the server sees it as the client's)."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", server.port, timeout=30, source_address=(source, 0)
    )
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def requests_by_route(text: str) -> Counter:
    """{(route, status): count} of requests answered in an exposition."""
    found: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "http_server_request_duration_seconds_count":
                labels = sample.labels
                found[labels["http_route"], labels["http_response_status_code"]] += sample.value
    return found


def durations_by_route(text: str) -> Counter:
    found: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "http_server_request_duration_seconds_count":
                found[sample.labels["http_route"]] += sample.value
    return found


def label_values(text: str) -> set[str]:
    return {
        value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        for value in sample.labels.values()
    }


def drive(server: Server, token: str, rounds: int) -> tuple[Counter, list[str]]:
    """4 x rounds requests from 16 threads: 200, 401, 404 by route, 404 unmatched."""

    def call(n):
        kind = n % 4
        if kind == 0:
            status, headers, _ = server.request("GET", "/api/v1/plans/", token=token)
            expected = ("api/v1/plans/", 200)
        elif kind == 1:
            status, headers, _ = server.request("GET", "/api/v1/plans/")
            expected = ("api/v1/plans/", 401)
        elif kind == 2:
            status, headers, _ = server.request(
                "GET", f"/api/v1/payments/{900000 + n}/", token=token
            )
            expected = (PAYMENT, 404)
        else:
            status, headers, _ = server.request("GET", f"/missing-{n}/")
            expected = ("_unmatched", 404)
        assert status == expected[1]
        return expected, headers["X-Request-ID"]

    results = server.many(4 * rounds, 16, call)
    expected = Counter((route, str(status)) for (route, status), _ in results)
    return expected, [rid for _, rid in results]


def assert_exact(text: str, expected: Counter, ids: list[str]) -> None:
    counted = requests_by_route(text)
    for key, count in expected.items():
        assert counted[key] == count, (key, counted[key], count)
    durations = durations_by_route(text)
    for route in {route for route, _ in expected}:
        assert durations[route] == sum(c for (r, _), c in expected.items() if r == route)
    labels = label_values(text)
    assert not any(value.startswith("/") or "missing-" in value for value in labels)
    assert not any(re.search(r"9000\d\d", value) for value in labels)
    assert not set(ids) & labels and not any(rid in text for rid in ids[:50])


def test_gunicorn_four_workers_scrapes_count_every_request_exactly(tmp_path, env):
    metrics_dir = tmp_path / "prometheus"
    env.update(
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        METRICS_ALLOWED_IPS="127.0.0.1",
        METRICS_TOKEN="scraper-token-0123456789abcdef",
    )
    server = gunicorn(tmp_path, "-w", "4", env=env)
    try:
        token = server.token()
        expected, ids = drive(server, token, 100)
        expected["api/v1/auth/token/", "200"] += 1
        scrapes = [get(server, "/metrics") for _ in range(8)]  # answered by any of the workers
        assert {status for status, _ in scrapes} == {200}
        for _, text in scrapes:
            assert_exact(text, expected, ids)
        workers = {path.name for path in metrics_dir.glob("histogram_*.db")}
        assert len(workers) >= 2, workers  # the counts really came from several processes
        # 127.0.0.2 is not in METRICS_ALLOWED_IPS: the 404 of any unknown URL...
        status, body = get(server, "/metrics", source="127.0.0.2")
        assert status == 404 and "http_server" not in body
        status, _ = get(
            server, "/metrics", source="127.0.0.2", headers={"Authorization": "Bearer nope"}
        )
        assert status == 404
        # ...unless it has the token
        status, text = get(
            server,
            "/metrics",
            source="127.0.0.2",
            headers={"Authorization": "Bearer scraper-token-0123456789abcdef"},
        )
        assert status == 200 and requests_by_route(text)["api/v1/plans/", "200"] == 100
    finally:
        assert server.stop() == 0
    security = read_all(Path(env["LOG_BASE_DIR"]), "billing_api_security.log")
    assert len([line for line in security if "event_type=metrics_access_refused" in line]) == 2
    assert not any("scraper-token-0123456789abcdef" in line for line in security)


def test_uvicorn_two_workers_share_their_counts(tmp_path, env):
    env.update(PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"))  # as make serve-asgi does
    server = uvicorn(tmp_path, "--workers", "2", "--no-proxy-headers", env=env)
    try:
        token = server.token()
        expected, ids = drive(server, token, 40)
        for _ in range(4):
            status, text = get(server, "/metrics")
            assert status == 200
            assert_exact(text, expected, ids)
    finally:
        server.stop()


def test_login_flood_through_gunicorn_keeps_the_security_file_small_and_exact(tmp_path, env):
    """One client, 2,000 failed logins, 4 workers: each worker writes FLOOD_LIMIT events of
    each type per window and one summary; the totals add up to every attempt."""
    attempts = 2000
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # A window far longer than the flood: on a loaded machine 2,000 logins can outlast the
    # default 60 s and cross a second window end (more lines than the bound below).
    env.update(
        DJANGO_SETTINGS_MODULE="tests.e2e.settings_volume", TMPDIR=str(tmp), FLOOD_WINDOW="3600"
    )
    server = gunicorn(tmp_path, "-w", "4", env=env)
    try:
        (metrics_dir,) = tmp.glob("billing-prometheus-*")  # made by config/gunicorn.conf.py

        def attempt(n):
            status, _, _ = server.request(
                "POST", "/api/v1/auth/token/", {"username": f"nobody{n % 7}", "password": "guess"}
            )
            assert status == 401

        server.many(attempts, 16, attempt)
    finally:
        assert server.stop() == 0  # SIGTERM: each worker writes its pending summaries
    assert not metrics_dir.exists()  # removed by the gunicorn config on exit
    log_dir = Path(env["LOG_BASE_DIR"])
    security = read_all(log_dir, "billing_api_security.log")

    def logged(event: str) -> tuple[int, int]:
        """(events the lines stand for, lines) of one event type."""
        lines = [line for line in security if f"event_type={event} " in line]
        summaries = [line for line in lines if " repeated=" in line]
        # A key's summary names the client; a summary of what its network's budget refused
        # (FLOOD_NETWORK_LIMIT, shared by the workers) names the network.
        assert all("ip=127.0.0.1 " in line or "client=127.0.0.0/24 " in line for line in summaries)
        repeated = sum(int(re.search(r" repeated=(\d+) ", line).group(1)) for line in summaries)
        return len(lines) - len(summaries) + repeated, len(lines)

    # Every failed login is a 401 with an authentication_failed event. At most 4 workers x
    # 2 windows (a run may cross a window's end) x (FLOOD_LIMIT 10 + a key's summary + a
    # network's summary) lines.
    events, lines = logged("authentication_failed")
    assert events == attempts
    assert lines <= 96, lines
    # billing's own login_failed event, if the view logs one, obeys the same rule.
    events, lines = logged("login_failed")
    assert events in (0, attempts) and lines <= 96
    # Both event types, one by one: at most the network's budget (100) per window.
    one_by_one = [line for line in security if "_failed " in line and " repeated=" not in line]
    assert len([line for line in one_by_one if "event_type=" in line]) <= 2 * 100
    size = sum(path.stat().st_size for path in log_dir.glob("billing_api_security.log*"))
    assert size < 60_000, size  # without flood control: ~1.1 MB for these 2,000 events
    # Every 4xx is still in the requests file: both lifecycle lines of every attempt.
    requests = read_all(log_dir, "billing_api_requests.log")
    assert len([line for line in requests if "Status: 401" in line]) == attempts


def test_sigterm_writes_the_held_started_line_of_a_request_in_flight(tmp_path, env):
    env.update(SAMPLE_RATE="0", DJANGO_SETTINGS_MODULE="tests.e2e.settings")
    server = gunicorn(tmp_path, "-w", "2", env=env)
    log_dir = Path(env["LOG_BASE_DIR"])
    outcome = {}
    release = tmp_path / "release-the-ledger"
    try:
        token = server.token()
        for _ in range(10):
            assert server.request("GET", "/api/v1/plans/", token=token)[0] == 200

        def slow_call():
            outcome["status"] = server.request(
                "GET",
                f"/t/slow-report/?until={release}",
                token=token,
                headers={"X-Request-ID": "in-flight-9"},
            )[0]

        caller = threading.Thread(target=slow_call)
        caller.start()
        wait_for(  # the view is running (its first record is on disk), held until released
            lambda: any("request_id=in-flight-9 " in line for line in read_all(log_dir, GENERAL)),
            "the slow view's first record in billing_api.log",
        )
        assert not any("in-flight-9" in line for line in read_all(log_dir, REQUESTS))
        server.proc.send_signal(signal.SIGTERM)
        # SIGTERM writes the held started line while the request is still in flight ...
        wait_for(
            lambda: any("request_id=in-flight-9 " in line for line in read_all(log_dir, REQUESTS)),
            "the held started line in billing_api_requests.log after SIGTERM",
        )
        release.touch()  # ... and only then does the view answer
    finally:
        release.touch()
        assert server.stop(signal.SIGTERM) == 0
    caller.join(30)
    assert outcome.get("status") == 200  # the worker finished it before exiting
    lines = read_all(log_dir, "billing_api_requests.log")
    mine = [line for line in lines if "request_id=in-flight-9 " in line]
    assert len(mine) == 2
    assert "API Request started" in mine[0] and "API Request completed - Status: 200" in mine[1]
    # the fast successes were sampled out: nothing else in the file
    assert len(lines) == 2
