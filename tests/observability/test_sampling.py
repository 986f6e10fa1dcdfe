"""SAMPLE_RATE: a fraction of fast successes, every error and slow request, never half a pair."""

from __future__ import annotations

import math
import random
import subprocess
import sys
import threading
import uuid
import zlib
from collections import defaultdict
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from freezegun import freeze_time

from observability.http.sampling import held_lines, keeps
from observability.testing import drain_logs
from tests import urls as test_urls
from tests.conftest import NOT_SLOW, parse_tokens, slow_threshold
from tests.observability import urls_volume
from tests.polling import DEADLINE, wait_for

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
    settings.OBSERVABILITY = {**NOT_SLOW, "SAMPLE_RATE": rate}
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


def kept_in_another_process(ids: list[str], rate: float, secret: str) -> list[str]:
    """The IDs `keeps()` keeps in a new interpreter whose settings hold `secret`."""
    script = (
        "import sys\n"
        "from django.conf import settings\n"
        "settings.configure(SECRET_KEY=sys.argv[1])\n"
        "from observability.http.sampling import keeps\n"
        "ids = sys.stdin.read().split()\n"
        "print(' '.join(i for i in ids if keeps(i, float(sys.argv[2]))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, secret, str(rate)],
        input=" ".join(ids),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    )
    return done.stdout.split()


def test_the_decision_is_the_same_in_another_process(settings):
    """Several workers (and hosts) share request IDs and the deployment's secret: each must
    decide as the others (no salted hash, no per-process key)."""
    settings.SECRET_KEY = SECRET_A
    ids = [f"shared-{n}" for n in range(500)]
    kept = kept_in_another_process(ids, 0.3, SECRET_A)
    assert kept == [rid for rid in ids if keeps(rid, 0.3)]
    assert 100 <= len(kept) <= 200


def test_another_secret_makes_another_decision_in_another_process(settings):
    """The decision is keyed by the deployment's secret: a process with another secret (a
    client computing it offline, without ours) keeps other IDs."""
    settings.SECRET_KEY = SECRET_A
    ids = [f"shared-{n}" for n in range(500)]
    ours = {rid for rid in ids if keeps(rid, 0.3)}
    theirs = set(kept_in_another_process(ids, 0.3, SECRET_B))
    assert 100 <= len(theirs) <= 200
    # Independent decisions: about 0.3 x 0.3 x 500 = 45 in common, never the same set.
    assert theirs != ours
    assert abs(len(theirs & ours) - 45) <= 4.5 * math.sqrt(500 * 0.09 * 0.91)


SECRET_A = "sampling-test-secret-a-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_B = "sampling-test-secret-b-0123456789abcdefghijklmnopqrstuvwxyz"


def public_keeps(request_id: str, rate: float) -> bool:
    """The decision as it was before it was keyed (CRC-32 and MurmurHash3's finaliser): what
    a client can compute offline from the README, with no secret."""
    mask = 0xFFFFFFFF
    h = zlib.crc32(request_id.encode())
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h < int(rate * 4294967296.0)


def within_binomial_bound(kept: int, count: int, rate: float) -> bool:
    """4.5 standard deviations: a false alarm once in ~150,000 runs, and the inputs are fixed."""
    return abs(kept - count * rate) <= 4.5 * math.sqrt(count * rate * (1 - rate))


def test_ids_a_client_chose_offline_to_be_dropped_are_kept_at_the_rate(logs, settings):
    """A client that picks IDs the public hash drops still gets the rate of them written."""
    rate, count = 0.2, 1000
    settings.OBSERVABILITY = {**NOT_SLOW, "SAMPLE_RATE": rate}
    settings.SECRET_KEY = SECRET_A
    chosen = [
        rid for rid in (f"hide-{n:06d}" for n in range(5 * count)) if not public_keeps(rid, rate)
    ]
    chosen = chosen[:count]
    client = Client()
    for rid in chosen:
        assert client.get("/t/plain/", HTTP_X_REQUEST_ID=rid).status_code == 200
    found = by_request(logs.lines("requests"))
    kept = [rid for rid in chosen if rid in found]
    assert within_binomial_bound(len(kept), count, rate), len(kept)
    for rid in kept:
        assert_whole_pair(found[rid])


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.5, 0.9])
def test_kept_fraction_of_many_ids_is_within_a_binomial_bound(settings, rate):
    """Uniform over IDs that differ only in their last characters (req-1, req-2 ...) and over
    UUIDs; the secret and the IDs are fixed, so the outcome is too."""
    settings.SECRET_KEY = SECRET_A
    count = 20_000
    sequential = [f"req-{n}" for n in range(count)]
    rng = random.Random(20261202)
    uuids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]
    for ids in (sequential, uuids):
        kept = sum(keeps(rid, rate) for rid in ids)
        assert within_binomial_bound(kept, count, rate), (rate, kept)


def test_the_decision_of_one_id_is_stable_and_keyed_by_the_secret(settings):
    settings.SECRET_KEY = SECRET_A
    ids = [f"stable-{n}" for n in range(2000)]
    first = [rid for rid in ids if keeps(rid, 0.5)]
    assert first == [rid for rid in ids if keeps(rid, 0.5)]
    settings.SECRET_KEY = SECRET_B
    other = [rid for rid in ids if keeps(rid, 0.5)]
    assert other != first
    assert within_binomial_bound(len(other), 2000, 0.5)


def test_every_error_and_slow_request_is_written_at_rate_zero(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "SAMPLE_RATE": 0.0}
    client = Client(raise_request_exception=False)
    fast = [client.get("/t/plain/")["X-Request-ID"] for _ in range(30)]
    missing = [client.get(f"/t/nope-{n}/")["X-Request-ID"] for n in range(20)]
    failed = [client.get("/t/boom/")["X-Request-ID"] for _ in range(5)]
    with freeze_time("2026-01-20 10:30:00") as freezer, slow_threshold(settings, 1.0):
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
    settings.OBSERVABILITY = {**NOT_SLOW, "SAMPLE_RATE": 0.0}
    rid = Client().get("/t/plain/")["X-Request-ID"]
    assert logs.for_request(rid) == []
    assert any(
        f"request_id={rid} " in line and "plain view ran" in line for line in logs.lines("general")
    )


def test_logtrace_shows_a_sampled_request_like_any_other(logs, settings, capsys):
    settings.OBSERVABILITY = {**NOT_SLOW, "SAMPLE_RATE": 0.5}
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
        assert urls_volume.running.wait(DEADLINE)
        return thread

    def wait_for_line(self, logs, rid: str, text: str) -> list[str]:
        def written() -> list[str] | None:
            lines = logs.for_request(rid)
            return lines if any(text in line for line in lines) else None

        return wait_for(written, f"the {text!r} line of {rid} in the requests file")

    def test_a_hung_request_is_written_once_past_the_slow_threshold(self, logs, settings):
        settings.OBSERVABILITY = {**NOT_SLOW, "SAMPLE_RATE": 0.0, "SLOW_REQUEST_THRESHOLD": 0.2}
        thread = self.start_blocking("hung-request-1")
        lines = self.wait_for_line(logs, "hung-request-1", STARTED)
        assert len(lines) == 1  # started, still running: no terminal line yet
        urls_volume.release.set()
        thread.join(DEADLINE)
        lines = logs.for_request("hung-request-1")
        assert len(lines) == 3
        assert_whole_pair(lines)
        assert "Slow API request detected" in lines[2]
        assert len(held_lines) == 0

    def test_draining_writes_the_held_line_and_the_request_then_ends_whole(self, logs, settings):
        settings.OBSERVABILITY = {**NOT_SLOW, "SAMPLE_RATE": 0.0, "SLOW_REQUEST_THRESHOLD": 60}
        thread = self.start_blocking("in-flight-1")
        assert logs.for_request("in-flight-1") == []
        assert drain_logs(DEADLINE)  # what SIGTERM does before the server's own handler
        assert len(logs.for_request("in-flight-1")) == 1
        urls_volume.release.set()
        thread.join(DEADLINE)
        lines = logs.for_request("in-flight-1")
        assert len(lines) == 2  # fast, but its started line is out: the pair is completed
        assert_whole_pair(lines)
        assert parse_tokens(lines[1])["sample_rate"] == "1.0"
