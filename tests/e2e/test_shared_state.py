"""Two gunicorn workers share what they remember: a request ID one worker saw is flagged by the other.

Each response names its worker (tests/e2e/worker_pid.py, a test-only middleware), so the
tests send one ID until both workers have answered it, then read the security file.
"""

from __future__ import annotations

import email.utils
import http.cookiejar
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import parse_tokens
from tests.e2e.servers import free_port, gunicorn, read_all
from tests.e2e.settings_viewer_rate import VIEWER_PAGES
from tests.e2e.worker_pid import PID_HEADER

pytestmark = pytest.mark.e2e

#: Requests one ID may take to reach the second worker before the test gives up.
MAX_TRIES = 300


def span_of(headers) -> str:
    return headers["traceresponse"].split("-")[2]


def reuse_records(log_dir: Path) -> tuple[list[dict[str, str]], int]:
    """The request_id_reused events written one by one, and the count their summaries hold
    (flood control writes 10 per client and window per worker, then one summary)."""
    events, summarised = [], 0
    for line in read_all(log_dir, "billing_api_security.log"):
        if "event_type=request_id_reused " not in line:
            continue
        repeated = re.search(r" repeated=(\d+) ", line)
        if repeated:
            summarised += int(repeated.group(1))
        else:
            events.append(parse_tokens(line))
    return events, summarised


def until_the_other_worker(server, first_pid: str, send) -> list[tuple[str, str]]:
    """Call `send()` (one request, returning its headers) until a worker other than
    `first_pid` answers; the (pid, span) of every call."""
    served = []
    for _ in range(MAX_TRIES):
        headers = send()
        served.append((headers[PID_HEADER], span_of(headers)))
        if headers[PID_HEADER] != first_pid:
            return served
    pytest.fail(f"worker {first_pid} answered all {MAX_TRIES} requests")


def on_both_workers(server, headers: dict[str, str]) -> list[tuple[str, str]]:
    """An anonymous GET with `headers` (a 401), sent until both workers have answered it:
    the (pid, span) of every call, the first worker's first."""

    def send():
        status, answer, _ = server.request("GET", "/api/v1/plans/", headers=headers)
        assert status == 401
        return answer

    first = send()
    later = until_the_other_worker(server, first[PID_HEADER], send)
    return [(first[PID_HEADER], span_of(first)), *later]


@pytest.fixture(params=["database", "redis"])
def cache_env(request, tmp_path, env):
    """The server's environment with the shared cache the parameter names."""
    env.update(DJANGO_SETTINGS_MODULE="tests.e2e.settings_reuse")
    if request.param == "database":
        yield env
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    redis = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        env["CACHE_URL"] = f"redis://127.0.0.1:{port}/0"
        yield env
    finally:
        redis.terminate()
        redis.wait(10)


def test_an_id_first_seen_by_one_worker_is_flagged_by_the_other(tmp_path, cache_env):
    server = gunicorn(tmp_path, "-w", "2", env=cache_env)
    rid = "shared-by-two-workers-0001"
    try:
        # Control: distinct IDs, several at once on both workers, flag nothing.
        distinct = [f"distinct-{n:03d}" for n in range(60)]
        server.many(
            60,
            6,
            lambda n: server.request(
                "GET", "/api/v1/plans/", headers={"X-Request-ID": distinct[n]}
            ),
        )

        served = on_both_workers(server, {"X-Request-ID": rid})
    finally:
        assert server.stop() == 0
    log_dir = Path(cache_env["LOG_BASE_DIR"])
    events, summarised = reuse_records(log_dir)
    assert not [event for event in events if event["request_id"] in distinct]
    mine = [event for event in events if event["request_id"] == rid]
    # Every use after the first is flagged, on either worker: one by one or summarised.
    assert len(mine) + summarised == len(served) - 1
    assert {event["first_span_id"] for event in mine} == {served[0][1]}
    # The other worker's first sight of the ID: flagged, though that worker never saw it.
    other_pid, other_span = served[-1]
    assert other_pid != served[0][0]
    assert other_span in {event["span_id"] for event in mine}


def test_a_traceparent_first_seen_by_one_worker_is_flagged_by_the_other(tmp_path, cache_env):
    """One (trace, parent span) sent again and again, each time under a fresh request ID:
    every use after the first is a traceparent_reused event naming the first use's span,
    the other worker's first sight of it included."""
    from observability.tracing.ids import new_ids

    trace = new_ids()[1]  # random, and never card-like (such a traceparent is refused)
    header = f"00-{trace}-00f067aa0ba902b7-01"
    server = gunicorn(tmp_path, "-w", "2", env=cache_env)
    try:
        served = on_both_workers(server, {"traceparent": header})
    finally:
        assert server.stop() == 0
    events, summarised = _events(Path(cache_env["LOG_BASE_DIR"]), "traceparent_reused")
    mine = [event for event in events if event.get("trace_id") == trace]
    assert len(mine) + summarised == len(served) - 1
    assert {event["first_span_id"] for event in mine} == {served[0][1]}
    other_pid, other_span = served[-1]
    assert other_pid != served[0][0]
    assert other_span in {event["span_id"] for event in mine}


def test_a_sampled_out_first_request_still_flags_the_reuse_on_another_worker(tmp_path, env):
    """SAMPLE_RATE 0: the victim's payment leaves no lifecycle line; the attacker's 401s under
    its ID, on either worker, are each flagged with the victim's span."""
    env.update(DJANGO_SETTINGS_MODULE="tests.e2e.settings_reuse", SAMPLE_RATE="0.0")
    server = gunicorn(tmp_path, "-w", "2", env=env)
    rid = "victim-payment-7f3a9c"
    try:
        token = server.token()
        status, victim, _ = server.request(
            "POST",
            "/api/v1/payments/",
            {"amount": "42.00", "currency": "USD", "payment_method": "pm_card_visa"},
            token,
            headers={"X-Request-ID": rid},
        )
        assert status == 201

        def attack():
            status, headers, _ = server.request(
                "GET", "/api/v1/payments/", headers={"X-Request-ID": rid}
            )
            assert status == 401
            return headers

        attacks = until_the_other_worker(server, victim[PID_HEADER], attack)
    finally:
        assert server.stop() == 0
    log_dir = Path(env["LOG_BASE_DIR"])
    victim_span = span_of(victim)
    requests = read_all(log_dir, "billing_api_requests.log")
    assert not [line for line in requests if f"span_id={victim_span} " in line]  # sampled out
    general = read_all(log_dir, "billing_api.log")
    assert [line for line in general if "payment_created" in line and victim_span in line]
    events, summarised = reuse_records(log_dir)
    mine = [event for event in events if event["request_id"] == rid]
    assert len(mine) + summarised == len(attacks)
    assert {event["first_span_id"] for event in mine} == {victim_span}
    assert attacks[-1][1] in {event["span_id"] for event in mine}  # the other worker's
    # Each attacker request is written whole (a 401 always is), under its own span.
    for _, span in attacks:
        assert len([line for line in requests if f"span_id={span} " in line]) == 2


def staff_opener(server) -> urllib.request.OpenerDirector:
    """A client logged in to the admin as the demo's staff user (a session cookie)."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(server.base + "/admin/login/", timeout=30) as response:
        form = response.read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert csrf is not None, form[:500]
    fields = {"username": "admin", "password": "admin-demo-pass", "next": "/admin/"}
    data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": csrf.group(1)}).encode()
    with opener.open(server.base + "/admin/login/", data, timeout=30) as response:
        assert response.url.endswith("/admin/"), response.url  # logged in: the admin's home
    return opener


def test_the_overview_one_worker_computed_is_served_from_the_cache_by_the_other(
    tmp_path, cache_env
):
    """The overview is kept in the shared cache: the other worker's first view reads no file."""
    server = gunicorn(tmp_path, "-w", "2", env=cache_env)
    try:
        opener = staff_opener(server)

        def view():
            with opener.open(server.base + "/ops/overview/", timeout=30) as response:
                assert response.status == 200 and b'id="overview-chart"' in response.read()
                return response.headers

        first = view()
        served = [(first[PID_HEADER], span_of(first))]
        served += until_the_other_worker(server, first[PID_HEADER], view)
    finally:
        assert server.stop() == 0
    events = [
        parse_tokens(line)
        for line in read_all(Path(cache_env["LOG_BASE_DIR"]), "billing_api_security.log")
        if "event_type=request_overview_viewed " in line and " repeated=" not in line
    ]
    assert events, "no audit event"
    by_span = {event["span_id"]: event for event in events}
    first_event, other_event = by_span[served[0][1]], by_span[served[-1][1]]
    assert first_event["cached"] == "False"
    assert other_event["process"] != first_event["process"]
    assert other_event["cached"] == "True"


def _events(log_dir: Path, event_type: str) -> tuple[list[dict[str, str]], int]:
    """The events of one type written one by one, and the count their summaries hold."""
    events, summarised = [], 0
    for line in read_all(log_dir, "billing_api_security.log"):
        if f"event_type={event_type} " not in line:
            continue
        repeated = re.search(r" repeated=(\d+) ", line)
        if repeated:
            summarised += int(repeated.group(1))
        else:
            events.append(parse_tokens(line))
    return events, summarised


def test_one_client_cannot_push_a_victims_id_out_of_the_shared_memory(tmp_path, env):
    """Two workers, a seen-IDs table of 60 rows, SEEN_IDS_PER_CLIENT 20: a client rotating
    addresses in its /64 sends 600 new IDs over both workers, then the victim's ID. The
    victim's ID is still remembered and the reuse flagged; the quota holds in total over
    the two workers (exactly 20 remembered, 580 refusals counted)."""
    env.update(
        DJANGO_SETTINGS_MODULE="tests.e2e.settings_quota",
        SEEN_IDS_PER_CLIENT="20",
        TRUSTED_PROXIES="1",  # the test is the proxy: X-Forwarded-For names the client
    )
    server = gunicorn(tmp_path, "-w", "2", env=env)
    victim_id = "victim-7f3a9c-0001"
    try:
        _, victim, _ = server.request(
            "GET",
            "/api/v1/plans/",
            headers={"X-Request-ID": victim_id, "X-Forwarded-For": "198.51.100.7"},
        )

        def flood(n: int) -> str:
            _, headers, _ = server.request(
                "GET",
                "/api/v1/plans/",
                headers={
                    "X-Request-ID": f"flood-{n:04d}",
                    "X-Forwarded-For": f"2001:db8:1:2::{n:x}",
                },
            )
            return headers[PID_HEADER]

        pids = set(server.many(600, 6, flood))
        assert len(pids) == 2, "both workers took part"
        server.request(
            "GET",
            "/api/v1/plans/",
            headers={"X-Request-ID": victim_id, "X-Forwarded-For": "2001:db8:1:2::ffff"},
        )
    finally:
        assert server.stop() == 0
    log_dir = Path(env["LOG_BASE_DIR"])
    reused, _ = _events(log_dir, "request_id_reused")
    assert [event["first_span_id"] for event in reused if event["request_id"] == victim_id] == [
        span_of(victim)
    ]
    refused, summarised = _events(log_dir, "request_id_quota_exceeded")
    # 600 + the reuse, 20 remembered: every other one refused, counted once over two workers.
    assert len(refused) + summarised == 581


def test_the_viewer_rate_is_one_count_over_both_workers(tmp_path, cache_env):
    """VIEWER_RATE 8/day, two workers: one staff member's pages are counted once, in the
    shared cache, wherever each lands. Pages are asked for until both workers have refused
    one: 8 were shown in all (a count per process would show up to 16), and each refusal
    is a 429 with Retry-After and its own audit event, from both processes."""
    cache_env["DJANGO_SETTINGS_MODULE"] = "tests.e2e.settings_viewer_rate"
    server = gunicorn(tmp_path, "-w", "2", env=cache_env)
    answers: list[tuple[str, int, str]] = []  # (worker, status, day of the response's Date)
    try:
        opener = staff_opener(server)
        for n in range(MAX_TRIES):
            try:
                with opener.open(f"{server.base}/ops/requests/?page={n}", timeout=30) as response:
                    status, headers = response.status, response.headers
            except urllib.error.HTTPError as refused:
                status, headers = refused.code, refused.headers
                assert status == 429 and int(headers["Retry-After"]) >= 1, status
            day = email.utils.parsedate_to_datetime(headers["Date"]).date().isoformat()
            answers.append((headers[PID_HEADER], status, day))
            if len({pid for pid, code, _ in answers if code == 429}) == 2:
                break
        else:
            pytest.fail(f"both workers did not refuse a page in {MAX_TRIES}: {answers}")
    finally:
        assert server.stop() == 0
    shown = [answer for answer in answers if answer[1] == 200]
    days = {day for _, _, day in answers}
    if len(days) == 1:
        assert len(shown) == VIEWER_PAGES, answers
    else:  # the run crossed midnight UTC: a new window, a new count
        assert len(shown) <= 2 * VIEWER_PAGES, answers
    events, summarised = _events(Path(cache_env["LOG_BASE_DIR"]), "request_viewer_throttled")
    assert len(events) + summarised == len(answers) - len(shown)
    assert len({event["process"] for event in events}) == 2
