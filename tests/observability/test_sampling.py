"""SAMPLE_RATE: a fraction of fast successes, every error and slow request, never half a pair."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from freezegun import freeze_time

from observability.sampling import held_lines, keeps
from observability.testing import drain_logs
from tests import urls as test_urls
from tests.conftest import parse_tokens
from tests.observability import urls_volume

pytestmark = pytest.mark.urls("tests.observability.urls_volume")
ROOT = Path(__file__).resolve().parents[2]

STARTED = "API Request started"
TERMINAL = ("API Request completed", "API Request failed")


def by_request(lines: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        found[parse_tokens(line)["request_id"]].append(line)
    return found


def assert_whole_pair(lines: list[str]) -> None:
    """Both lifecycle lines, started first (a slow warning may follow)."""
    assert STARTED in lines[0], lines
    assert any(marker in lines[1] for marker in TERMINAL), lines
    assert len([line for line in lines if STARTED in line]) == 1, lines


def test_kept_fraction_of_fast_successes_is_within_a_binomial_bound(logs, settings):
    rate, count = 0.2, 2000
    settings.OBSERVABILITY = {"SAMPLE_RATE": rate}
    client = Client()
    ids = [f"sampling-{n:05d}" for n in range(count)]
    for rid in ids:
        assert client.get("/t/plain/", HTTP_X_REQUEST_ID=rid).status_code == 200
    found = by_request(logs.lines("requests"))
    kept = [rid for rid in ids if rid in found]
    # 4.5 standard deviations: a false alarm once in ~150,000 runs, and the IDs are fixed.
    mean, sd = count * rate, math.sqrt(count * rate * (1 - rate))
    assert abs(len(kept) - mean) <= 4.5 * sd, (len(kept), mean)
    for rid in kept:
        lines = found[rid]
        assert len(lines) == 2
        assert_whole_pair(lines)
        assert parse_tokens(lines[1])["sample_rate"] == "0.2"
    assert set(found) == set(kept)  # nothing else in the file
    assert set(kept) == {rid for rid in ids if keeps(rid, rate)}


def test_the_decision_is_the_same_in_another_process():
    """Several workers share request IDs: each must decide as the others (no salted hash)."""
    ids = [f"shared-{n}" for n in range(500)]
    script = (
        "import sys\n"
        "from observability.sampling import keeps\n"
        "ids = sys.stdin.read().split()\n"
        "print(' '.join(i for i in ids if keeps(i, 0.3)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=" ".join(ids),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    )
    assert done.stdout.split() == [rid for rid in ids if keeps(rid, 0.3)]
    assert 100 <= len(done.stdout.split()) <= 200


def test_every_error_and_slow_request_is_written_at_rate_zero(logs, settings):
    settings.OBSERVABILITY = {"SAMPLE_RATE": 0.0}
    client = Client(raise_request_exception=False)
    fast = [client.get("/t/plain/")["X-Request-ID"] for _ in range(30)]
    missing = [client.get(f"/t/nope-{n}/")["X-Request-ID"] for n in range(20)]
    failed = [client.get("/t/boom/")["X-Request-ID"] for _ in range(5)]
    with freeze_time("2026-01-20 10:30:00") as freezer:
        test_urls.clock.update(freezer=freezer, advance=1.5)
        try:
            slow = client.get("/t/plain/")["X-Request-ID"]
        finally:
            test_urls.clock.update(freezer=None, advance=0.0)
    found = by_request(logs.lines("requests"))
    assert not set(fast) & set(found)
    for rid in [*missing, *failed]:
        assert len(found[rid]) == 2
        assert_whole_pair(found[rid])
        assert parse_tokens(found[rid][1])["sample_rate"] == "1.0"
    assert "Status: 404" in found[missing[0]][1]
    assert "API Request failed - Status: 500" in found[failed[0]][1]
    started, completed, warning = found[slow]
    assert_whole_pair([started, completed])
    assert "Slow API request detected" in warning
    # The held started line keeps the time the request started, not the time it was written.
    assert started.startswith("2026-01-20 10:30:00,000 INFO")
    assert completed.startswith("2026-01-20 10:30:01,500 INFO")


def test_rate_one_writes_every_request_without_a_sample_rate_field(logs):
    rids = [Client().get("/t/plain/")["X-Request-ID"] for _ in range(20)]
    found = by_request(logs.lines("requests"))
    for rid in rids:
        assert_whole_pair(found[rid])
        assert "sample_rate" not in parse_tokens(found[rid][1])


def test_records_of_the_application_are_written_whatever_the_rate(logs, settings):
    settings.OBSERVABILITY = {"SAMPLE_RATE": 0.0}
    rid = Client().get("/t/plain/")["X-Request-ID"]
    assert logs.for_request(rid) == []
    assert any(
        f"request_id={rid} " in line and "plain view ran" in line for line in logs.lines("general")
    )


def test_logtrace_shows_a_sampled_request_like_any_other(logs, settings, capsys):
    settings.OBSERVABILITY = {"SAMPLE_RATE": 0.5}
    rid = next(f"trace-{n}" for n in range(100) if keeps(f"trace-{n}", 0.5))
    Client().get("/t/plain/?page=2", HTTP_X_REQUEST_ID=rid)
    logs.lines("requests")
    call_command("logtrace", rid, "--dir", str(logs.path))
    out = capsys.readouterr().out
    assert f"request {rid}" in out
    assert "GET /t/plain/" in out and "status=200" in out
    assert "[requests] " in out and STARTED in out and "API Request completed" in out
    assert "sample_rate=0.5" in out
    assert "plain view ran" in out


class TestRequestsInFlight:
    """A request the hash dropped is findable while it hangs, and when the process drains."""

    @pytest.fixture(autouse=True)
    def _gates(self):
        urls_volume.running.clear()
        urls_volume.release.clear()
        yield
        urls_volume.release.set()

    def start_blocking(self, rid: str) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: Client().get("/t/block/", HTTP_X_REQUEST_ID=rid), daemon=True
        )
        thread.start()
        assert urls_volume.running.wait(10)
        return thread

    def wait_for_line(self, logs, rid: str, text: str) -> list[str]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = logs.for_request(rid)
            if any(text in line for line in lines):
                return lines
            time.sleep(0.02)
        pytest.fail(f"no {text!r} line for {rid} within 10 s")

    def test_a_hung_request_is_written_once_past_the_slow_threshold(self, logs, settings):
        settings.OBSERVABILITY = {"SAMPLE_RATE": 0.0, "SLOW_REQUEST_THRESHOLD": 0.2}
        thread = self.start_blocking("hung-request-1")
        lines = self.wait_for_line(logs, "hung-request-1", STARTED)
        assert len(lines) == 1  # started, still running: no terminal line yet
        urls_volume.release.set()
        thread.join(10)
        lines = logs.for_request("hung-request-1")
        assert len(lines) == 3
        assert_whole_pair(lines)
        assert "Slow API request detected" in lines[2]
        assert len(held_lines) == 0

    def test_draining_writes_the_held_line_and_the_request_then_ends_whole(self, logs, settings):
        settings.OBSERVABILITY = {"SAMPLE_RATE": 0.0, "SLOW_REQUEST_THRESHOLD": 60}
        thread = self.start_blocking("in-flight-1")
        assert logs.for_request("in-flight-1") == []
        assert drain_logs(10)  # what SIGTERM does before the server's own handler
        assert len(logs.for_request("in-flight-1")) == 1
        urls_volume.release.set()
        thread.join(10)
        lines = logs.for_request("in-flight-1")
        assert len(lines) == 2  # fast, but its started line is out: the pair is completed
        assert_whole_pair(lines)
        assert parse_tokens(lines[1])["sample_rate"] == "1.0"
