"""Flood control: repeated records written up to a limit, then one summary per window, exact."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from freezegun import freeze_time

from observability import flood, log_security_event, request_context
from observability.flood import guard
from observability.testing import drain_logs
from tests.conftest import parse_tokens

ROOT = Path(__file__).resolve().parents[2]
# Frozen in the future: the writer's own tick may read the real clock, which is then
# always inside the frozen windows (it never closes one early).
FUTURE = "2031-03-01 12:00:00"


def failed_logins(count: int, ip: str = "203.0.113.7", event_type: str = "login_failed") -> None:
    with request_context(ip=ip):
        for n in range(count):
            log_security_event(
                event_type=event_type, severity="warning", details={"username": f"user{n}"}
            )


def event_lines(logs, event_type: str, file: str = "security") -> tuple[list[str], list[str]]:
    """(lines written one by one, summary lines) of one event type."""
    lines = [line for line in logs.lines(file) if f"event_type={event_type} " in line + " "]
    summaries = [line for line in lines if "repeated=" in line]
    return [line for line in lines if "repeated=" not in line], summaries


def total(individual: list[str], summaries: list[str]) -> int:
    return len(individual) + sum(int(parse_tokens(line)["repeated"]) for line in summaries)


@pytest.fixture
def limited(settings):
    settings.OBSERVABILITY = {"FLOOD_LIMIT": 5, "FLOOD_WINDOW": 60}


def test_repeated_failed_logins_are_summarised_with_an_exact_total(logs, limited):
    with freeze_time(FUTURE) as frozen:
        failed_logins(100)
        frozen.tick(30)
        failed_logins(20)
        frozen.tick(31)  # the window (60 s from the first event) is over
        guard.sweep()
    individual, summaries = event_lines(logs, "login_failed")
    assert len(individual) == 5
    (summary,) = summaries
    fields = parse_tokens(summary)
    assert fields["repeated"] == "115"
    assert fields["ip"] == "203.0.113.7"
    assert fields["severity"] == "warning"
    assert fields["first"] == "2031-03-01T12:00:00.000Z"
    assert fields["last"] == "2031-03-01T12:00:30.000Z"
    assert fields["request_id"] == "-"  # it stands for many requests
    assert (
        " WARNING [billing.security] Security Event: login_failed - Severity: warning, "
        "Repeated: 115 more from 203.0.113.7" in summary
    )
    assert total(individual, summaries) == 120


def test_each_window_has_its_own_summary_and_the_sum_stays_exact(logs, limited):
    with freeze_time(FUTURE) as frozen:
        for _ in range(3):
            failed_logins(40)
            frozen.tick(61)
            guard.sweep()
    individual, summaries = event_lines(logs, "login_failed")
    assert len(individual) == 15
    assert [parse_tokens(line)["repeated"] for line in summaries] == ["35", "35", "35"]
    assert total(individual, summaries) == 120


def test_clients_and_event_types_are_counted_apart(logs, limited):
    with freeze_time(FUTURE):
        failed_logins(8, ip="198.51.100.1")
        failed_logins(8, ip="198.51.100.2")
        failed_logins(8, ip="198.51.100.1", event_type="invalid_token")
        failed_logins(3, ip="198.51.100.3")
        drain_logs()
    individual, summaries = event_lines(logs, "login_failed")
    assert len(individual) == 13
    assert sorted(parse_tokens(line)["ip"] for line in summaries) == [
        "198.51.100.1",
        "198.51.100.2",
    ]
    assert total(individual, summaries) == 19
    individual, summaries = event_lines(logs, "invalid_token")
    assert total(individual, summaries) == 8 and len(summaries) == 1


def test_a_window_ends_on_the_writer_tick_without_a_later_event(logs, settings):
    settings.OBSERVABILITY = {"FLOOD_LIMIT": 3, "FLOOD_WINDOW": 0.2}
    failed_logins(25)
    deadline = time.monotonic() + 10
    summaries: list[str] = []
    while time.monotonic() < deadline and not summaries:
        time.sleep(0.05)
        summaries = event_lines(logs, "login_failed")[1]
    assert summaries, "no summary was written when the window ended"
    individual, summaries = event_lines(logs, "login_failed")
    assert total(individual, summaries) == 25


def test_draining_writes_pending_summaries(logs, limited):
    failed_logins(50)
    assert event_lines(logs, "login_failed")[1] == []  # the window is still open
    assert guard.pending() == 45
    drain_logs()
    individual, summaries = event_lines(logs, "login_failed")
    assert total(individual, summaries) == 50
    assert guard.pending() == 0


def test_an_error_storm_of_a_named_logger_is_summarised_per_call_site(logs, settings):
    settings.OBSERVABILITY = {"FLOOD_LIMIT": 4, "FLOOD_LOGGERS": ["billing.views"]}
    logger = logging.getLogger("billing.views")
    for n in range(60):
        with request_context(ip=f"192.0.2.{n}"):  # many clients, one code path
            logger.error("gateway timeout for order %s", n)
    for n in range(6):
        logger.error("ledger unavailable %s", n)
    drain_logs()
    for file in ("general", "errors"):  # a summary reaches the files its records reach
        lines = [line for line in logs.lines(file) if "gateway timeout" in line]
        summaries = [line for line in lines if "repeated=" in line]
        (summary,) = summaries
        assert len(lines) - 1 + int(parse_tokens(summary)["repeated"]) == 60
        assert (
            "ERROR [billing.views] Repeated: 56 more records like: gateway timeout for order 4"
            in summary
        )
        assert parse_tokens(summary)["call_site"].startswith("test_flood.")
        ledger = [line for line in logs.lines(file) if "ledger unavailable" in line]
        assert len(ledger) == 5 and "repeated=2 " in ledger[-1]


def test_unguarded_loggers_are_untouched(logs, limited):
    for n in range(30):
        logging.getLogger("billing").info("invoice %s sent", n)
    assert len([line for line in logs.lines("general") if "invoice" in line]) == 30


def test_too_many_clients_share_one_key_per_event_type(logs, limited, monkeypatch):
    monkeypatch.setattr(flood, "MAX_KEYS", 3)
    for n in range(10):
        failed_logins(7, ip=f"198.51.100.{n}")
    drain_logs()
    individual, summaries = event_lines(logs, "login_failed")
    assert total(individual, summaries) == 70
    assert "*" in {parse_tokens(line)["ip"] for line in summaries}
    assert len(summaries) <= 4


def test_the_guard_follows_the_security_logger_setting(logs, settings):
    settings.OBSERVABILITY = {"FLOOD_LIMIT": 2, "SECURITY_LOGGER": "billing"}
    assert guard in logging.getLogger("billing").filters
    assert guard not in logging.getLogger("billing.security").filters
    settings.OBSERVABILITY = {}
    assert guard in logging.getLogger("billing.security").filters
    assert guard not in logging.getLogger("billing").filters


EXIT_SCRIPT = """
import os, signal, sys
from observability import log_security_event, request_context
with request_context(ip="203.0.113.99"):
    for n in range(300):
        log_security_event(event_type="login_failed", severity="warning")
if sys.argv[1] == "sigterm":
    os.kill(os.getpid(), signal.SIGTERM)
"""


@pytest.mark.parametrize("ending", ["exit", "sigterm"])
def test_a_process_that_ends_writes_its_pending_summaries(tmp_path, ending):
    env = {
        **os.environ,
        "LOG_BASE_DIR": str(tmp_path),
        "SECRET_KEY": "flood-test-secret-key-0123456789",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + EXIT_SCRIPT, ending],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == (-signal.SIGTERM if ending == "sigterm" else 0), done.stderr
    text = (tmp_path / "billing_api_security.log").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if "login_failed" in line]
    repeated = [int(m) for m in re.findall(r" repeated=(\d+) ", text)]
    assert len(lines) == 11  # the project's FLOOD_LIMIT (10), then one summary
    assert len(lines) - len(repeated) + sum(repeated) == 300
