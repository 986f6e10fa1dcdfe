"""Flood control: repeated records written up to a limit, then one summary per window, exact."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.test import Client
from freezegun import freeze_time

from observability import log_security_event, request_context
from observability.guard import flood_windows
from observability.guard.flood import guard
from observability.http import emit
from observability.testing import drain_logs
from tests.conftest import NOT_SLOW, parse_tokens
from tests.polling import poll_until, wait_for

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
    settings.OBSERVABILITY = {**NOT_SLOW, "FLOOD_LIMIT": 5, "FLOOD_WINDOW": 60}


@pytest.fixture
def keys_only(settings):
    """The per-key table alone: no network or global budget (flood_shared) on top."""
    settings.OBSERVABILITY = {
        **NOT_SLOW,
        "FLOOD_LIMIT": 5,
        "FLOOD_WINDOW": 60,
        "FLOOD_NETWORK_LIMIT": 0,
        "FLOOD_GLOBAL_LIMIT": 0,
    }


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
    settings.OBSERVABILITY = {**NOT_SLOW, "FLOOD_LIMIT": 3, "FLOOD_WINDOW": 0.2}
    failed_logins(25)
    wait_for(
        lambda: event_lines(logs, "login_failed")[1], "a summary written when the window ended"
    )
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
    settings.OBSERVABILITY = {**NOT_SLOW, "FLOOD_LIMIT": 4, "FLOOD_LOGGERS": ["billing.views"]}
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


def test_too_many_clients_close_the_oldest_keys_and_each_keeps_its_own(logs, limited, monkeypatch):
    """Past MAX_KEYS the oldest window is closed early (summarised), never merged into a
    `from *` key that would mute later clients (finding 11)."""
    monkeypatch.setattr(flood_windows, "MAX_KEYS", 3)
    for n in range(10):
        failed_logins(7, ip=f"198.51.100.{n}")
    drain_logs()
    individual, summaries = event_lines(logs, "login_failed")
    assert total(individual, summaries) == 70
    assert sorted(parse_tokens(line)["ip"] for line in summaries) == [
        f"198.51.100.{n}" for n in range(10)
    ]


def test_the_guard_follows_the_security_logger_setting(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "FLOOD_LIMIT": 2, "SECURITY_LOGGER": "billing"}
    assert guard in logging.getLogger("billing").filters
    # billing.security is now a descendant of the guarded logger: guarded too (finding 2)
    assert guard in logging.getLogger("billing.security").filters
    assert guard in logging.getLogger("billing.views").filters
    assert guard not in logging.getLogger("billing.api").filters  # lifecycle lines: never
    settings.OBSERVABILITY = {**NOT_SLOW}
    assert guard in logging.getLogger("billing.security").filters
    assert guard not in logging.getLogger("billing").filters
    assert guard not in logging.getLogger("billing.views").filters


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


# --- Every security record passes flood control (THREATS.md 5), whatever logger made it ----


def message_lines(lines: list[str], marker: str) -> tuple[list[str], list[str]]:
    """(lines written one by one, summary lines) of the records whose message holds marker."""
    mine = [line for line in lines if marker in line]
    return [line for line in mine if " repeated=" not in line], [
        line for line in mine if " repeated=" in line
    ]


def security_handler() -> logging.Handler:
    """The security file's handler of the current configuration."""
    for handler in logging.getLogger("billing.security").handlers:
        if getattr(handler, "baseFilename", "").endswith("billing_api_security.log"):
            return handler
    raise AssertionError("no security file handler")


def late_name(parent: str) -> str:
    """A logger that did not exist at start-up (nor in any earlier test)."""
    return f"{parent}.Late{uuid.uuid4().hex[:12]}"


CHILDREN = [
    "django.security.DisallowedHost",
    "django.security.csrf",
    "django.security.SuspiciousOperation",
    "django.security.SuspiciousFileOperation",
    "late:django.security",
    "billing.security.audit",
    "late:billing.security",
    "common.jwt_auth.refresh",
    "late:common.jwt_auth",
]


@pytest.mark.parametrize("name", CHILDREN)
@pytest.mark.parametrize("observability", ["defaults", "project"])
def test_every_descendant_of_a_security_logger_is_flood_controlled(
    logs, settings, name, observability
):
    """Django logs on children of django.security; a child made after start-up counts too.
    With the library's defaults (no FLOOD_LOGGERS) as with this project's settings."""
    base = {} if observability == "defaults" else dict(settings.OBSERVABILITY)
    settings.OBSERVABILITY = {**NOT_SLOW, **base, "FLOOD_LIMIT": 5, "FLOOD_WINDOW": 60}
    if name.startswith("late:"):
        name = late_name(name.removeprefix("late:"))
    logger = logging.getLogger(name)
    marker = f"flooded-{uuid.uuid4().hex[:8]}"
    with request_context(ip="203.0.113.7"):
        for n in range(60):
            logger.error("Invalid HTTP_HOST header: '%s-%s.example'.", marker, n)
    drain_logs()
    for file in ("security", "errors"):  # one decision per record, applied to each file
        individual, summaries = message_lines(logs.lines(file), marker)
        assert [line.split(marker)[1][:3] for line in individual] == [
            "-0.",
            "-1.",
            "-2.",
            "-3.",
            "-4.",
        ], file
        (summary,) = summaries
        assert parse_tokens(summary)["ip"] == "203.0.113.7"
        assert (
            f"[{name}] Repeated: 55 more records like: Invalid HTTP_HOST header: "
            f"'{marker}-5.example'." in summary
        )
        assert total(individual, summaries) == 60


def test_a_record_reaching_three_handlers_is_counted_once(tmp_path, limited, capfd):
    """Security file, errors file and console: each gets the same five lines and summary."""
    from tests.conftest import configure_logs

    logs = configure_logs(tmp_path / "logs", console=True)
    try:
        logger = logging.getLogger("django.security.csrf")
        with request_context(ip="198.51.100.77"):
            for n in range(40):
                logger.error("Forbidden (CSRF cookie not set.): /admin/login/ n=%s", n)
        drain_logs()
        console = capfd.readouterr().err.splitlines()
        for lines in (logs.lines("security"), logs.lines("errors"), console):
            individual, summaries = message_lines(lines, "CSRF cookie not set")
            assert len(individual) == 5
            assert all(f"n={n}" in line for n, line in enumerate(individual))
            (summary,) = summaries  # the console's layout has no time: read the count
            assert len(individual) + int(re.findall(r" repeated=(\d+) ", summary)[0]) == 40
    finally:
        configure_logs(tmp_path / "after")


def test_a_users_handler_gets_the_same_exact_story(logs, limited):
    """A handler of the user's on django.security receives the records the files receive,
    and the summary: its own count is exact too (nothing seen twice, nothing unaccounted)."""
    seen: list[logging.LogRecord] = []

    class Mine(logging.Handler):
        def emit(self, record):
            seen.append(record)

    parent = logging.getLogger("django.security")
    mine = Mine()
    parent.addHandler(mine)
    try:
        child = logging.getLogger(late_name("django.security"))
        with request_context(ip="203.0.113.8"):
            for n in range(30):
                child.error("Invalid HTTP_HOST header: 'evil%s.example'.", n)
        drain_logs()
    finally:
        parent.removeHandler(mine)
    individual = [r for r in seen if not hasattr(r, "repeated")]
    summaries = [r for r in seen if hasattr(r, "repeated")]
    assert len(individual) == 5
    assert len(individual) + sum(r.repeated for r in summaries) == 30


def test_any_record_that_reaches_the_security_file_is_flood_controlled(logs, limited):
    """A logger the user routes to the security file, whatever its name."""
    logger = logging.getLogger(late_name("myapp.audit"))
    logger.propagate = False
    logger.addHandler(security_handler())
    try:
        with request_context(ip="192.0.2.9"):
            for n in range(50):
                logger.warning("audit refused %s", n)
        drain_logs()
    finally:
        logger.handlers.clear()
    individual, summaries = message_lines(logs.lines("security"), "audit refused")
    assert len(individual) == 5 and len(summaries) == 1
    assert total(individual, summaries) == 50


@pytest.mark.django_db
@pytest.mark.parametrize("flood", ["host", "csrf"])
def test_request_floods_of_djangos_security_records_are_bounded(logs, limited, flood):
    """60 requests with a forged Host or without a CSRF token: FLOOD_LIMIT lines, one summary."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    for n in range(60):
        if flood == "host":
            response = client.get("/api/v1/plans/", HTTP_HOST=f"evil{n}.example")
            assert response.status_code == 400
        else:
            response = client.post("/admin/login/", {"username": "x", "password": "y"})
            assert response.status_code == 403
    drain_logs()
    marker = "Invalid HTTP_HOST header" if flood == "host" else "Forbidden (CSRF"
    individual, summaries = message_lines(logs.lines("security"), marker)
    assert len(individual) == 5, len(individual)
    (summary,) = summaries
    assert parse_tokens(summary)["ip"] == "127.0.0.1"
    assert total(individual, summaries) == 60
    # the lifecycle lines are never flood-controlled: every request is in the requests file
    status = "400" if flood == "host" else "403"
    assert len([line for line in logs.lines("requests") if f"Status: {status}" in line]) == 60


def test_the_fast_path_stays_with_flood_control_on_every_handler(tmp_path, limited):
    from tests.conftest import configure_logs

    configure_logs(tmp_path / "logs", console=True, debug=True)
    try:
        handlers = emit.plan(logging.getLogger("billing.api"), logging.INFO)
        assert handlers is not None and len(handlers) == 4  # requests, errors, console, debug
    finally:
        configure_logs(tmp_path / "after")


@pytest.mark.django_db
def test_lifecycle_lines_are_never_flood_controlled_under_a_guarded_parent(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "FLOOD_LIMIT": 2, "FLOOD_LOGGERS": ["billing"]}
    assert guard not in logging.getLogger("billing.api").filters
    assert emit.plan(logging.getLogger("billing.api"), logging.INFO) is not None
    client = Client(raise_request_exception=False)
    for _ in range(20):
        assert client.get("/api/v1/plans/").status_code == 401
    drain_logs()
    assert len([line for line in logs.lines("requests") if "Status: 401" in line]) == 20


# --- Keys: a /64 is one client; the table is bounded and one source cannot exhaust it -----


def table_size() -> int:
    return len(guard._windows)


def test_a_rotating_ipv6_64_is_one_client(logs, limited):
    """5,000 invalid tokens from 5,000 addresses of one /64: one key, five lines, one summary."""
    sizes = set()
    for n in range(5000):
        failed_logins(
            1,
            ip=f"2001:db8:1:2:{n >> 12 & 0xFFFF:x}:{n & 0xFFF:x}::{n:x}",
            event_type="invalid_token",
        )
        sizes.add(table_size())
    assert max(sizes) == 1
    failed_logins(3, ip="2001:db8:1:3::1", event_type="invalid_token")  # the next /64: its own
    drain_logs()
    individual, summaries = event_lines(logs, "invalid_token")
    assert len(individual) == 8
    (summary,) = summaries
    fields = parse_tokens(summary)
    assert fields["client"] == "2001:db8:1:2::/64" and fields["repeated"] == "4995"
    assert fields["ip"] == "-"  # a network has no address of its own
    assert "Repeated: 4995 more from 2001:db8:1:2::/64" in summary
    assert [parse_tokens(line)["ip"] for line in individual[5:]] == ["2001:db8:1:3::1"] * 3
    assert total(individual, summaries) == 5003


def test_an_ipv4_mapped_address_is_its_ipv4_client(logs, limited):
    failed_logins(4, ip="::ffff:198.51.100.4")
    failed_logins(4, ip="198.51.100.4")
    drain_logs()
    individual, summaries = event_lines(logs, "login_failed")
    (summary,) = summaries
    assert parse_tokens(summary)["ip"] == "198.51.100.4" and len(individual) == 5
    assert total(individual, summaries) == 8


def test_many_ipv4_sources_never_exhaust_the_table(logs, keys_only, monkeypatch):
    """More sources than keys: the oldest keys are closed early (their counts summarised), so
    a later victim's events are still written one by one under its own address."""
    monkeypatch.setattr(flood_windows, "MAX_KEYS", 50)
    sizes = set()
    for n in range(400):
        failed_logins(7, ip=f"10.{n >> 8}.{n & 0xFF}.1")
        sizes.add(table_size())
    assert max(sizes) == 50
    failed_logins(3, ip="192.0.2.200")
    drain_logs()
    individual, summaries = event_lines(logs, "login_failed")
    assert total(individual, summaries) == 400 * 7 + 3
    ips = [parse_tokens(line)["ip"] for line in summaries]
    assert "*" not in ips
    assert sorted(ips) == sorted(f"10.{n >> 8}.{n & 0xFF}.1" for n in range(400))
    assert all(line.count("repeated=2 ") for line in summaries)  # each source: 5 + 2
    victim = [line for line in individual if "ip=192.0.2.200 " in line]
    assert len(victim) == 3


def test_one_source_cannot_hold_more_than_its_share_of_keys(logs, keys_only, monkeypatch):
    """A client that makes its own event types (or call sites) holds at most
    MAX_KEYS_PER_SOURCE keys; its oldest are closed early, counts exact."""
    monkeypatch.setattr(flood_windows, "MAX_KEYS_PER_SOURCE", 8)
    sizes = set()
    for n in range(100):
        failed_logins(7, ip="203.0.113.50", event_type=f"probe_{n}")
        sizes.add(table_size())
    assert max(sizes) == 8
    failed_logins(2, ip="203.0.113.51")  # another client still gets a key of its own
    assert table_size() == 9
    drain_logs()
    lines = [line for line in logs.lines("security") if "event_type=probe_" in line]
    summaries = [line for line in lines if " repeated=" in line]
    assert len(summaries) == 100
    assert total([line for line in lines if " repeated=" not in line], summaries) == 700


def test_the_client_prefixes_are_settings(logs, settings):
    settings.OBSERVABILITY = {
        **NOT_SLOW,
        "FLOOD_LIMIT": 2,
        "FLOOD_IPV6_PREFIX": 48,
        "FLOOD_IPV4_PREFIX": 24,
    }
    for n in range(10):
        failed_logins(1, ip=f"2001:db8:7:{n:x}::1")
        failed_logins(1, ip=f"198.51.100.{n}")
    drain_logs()
    individual, summaries = event_lines(logs, "login_failed")
    assert sorted(parse_tokens(line)["client"] for line in summaries) == [
        "198.51.100.0/24",
        "2001:db8:7::/48",
    ]
    assert len(individual) == 4 and total(individual, summaries) == 20


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FLOOD_IPV6_PREFIX", 129),
        ("FLOOD_IPV6_PREFIX", -1),
        ("FLOOD_IPV6_PREFIX", "64"),
        ("FLOOD_IPV6_PREFIX", True),
        ("FLOOD_IPV4_PREFIX", 33),
        ("FLOOD_IPV4_PREFIX", 7),
        ("FLOOD_IPV6_PREFIX", 15),
    ],
)
def test_a_bad_client_prefix_is_refused_with_a_sentence(name, value):
    from observability.conf import validate

    (problem,) = validate({name: value})
    assert problem.startswith(f"OBSERVABILITY[{name!r}] must be a prefix length")
    assert repr(value) in problem


def test_a_networks_summary_is_valid_ecs(tmp_path, limited):
    """client.ip is an address in ECS (an Elasticsearch `ip`): a /64's summary names the
    network under labels.client and writes no client.ip."""
    pytest.importorskip("ecs_logging")
    from tests.conftest import configure_logs

    logs = configure_logs(tmp_path / "logs", log_format="ecs")
    try:
        for n in range(8):
            failed_logins(1, ip=f"2001:db8:9:9::{n + 1:x}")
        drain_logs()
        lines = [json.loads(line) for line in logs.lines("security")]
    finally:
        configure_logs(tmp_path / "after")
    (summary,) = [line for line in lines if "repeated" in line.get("labels", {})]
    assert summary["labels"]["client"] == "2001:db8:9:9::/64"
    assert "ip" not in summary.get("client", {})
    individual = [line for line in lines if "repeated" not in line.get("labels", {})]
    assert [line["client"]["ip"] for line in individual] == [
        f"2001:db8:9:9::{n}" for n in range(1, 6)
    ]


def test_a_descendant_made_later_is_guarded_even_when_it_writes_only_to_its_own_handler(
    logs, limited
):
    """A child of django.security made after start-up, not propagating, with a handler of
    the user's: the writer's tick puts the guard on it before it reaches any file of ours."""
    seen: list[logging.LogRecord] = []

    class Mine(logging.Handler):
        def emit(self, record):
            seen.append(record)

    def adopted(logger: logging.Logger) -> bool:
        # polled: the writer's tick (every 50 ms) looks over new loggers
        return poll_until(lambda: guard in logger.filters, interval=0.02)

    name = late_name("django.security")
    assert adopted(logging.getLogger(f"{name}.first"))  # its parent: a placeholder, seen
    child = logging.getLogger(name)  # the placeholder becomes this logger: no new name
    child.propagate = False
    child.addHandler(Mine())
    assert adopted(child)
    with request_context(ip="203.0.113.9"):
        for n in range(30):
            child.warning("Session data corrupted %s", n)
    drain_logs()
    individual = [r for r in seen if not hasattr(r, "repeated")]
    assert len(individual) == 5
    assert len(individual) + sum(r.repeated for r in seen if hasattr(r, "repeated")) == 30


def test_the_table_of_closed_windows_is_bounded_while_the_tick_is_late(logs, limited, monkeypatch):
    """Windows closed early wait for the writer's tick; a tick that is late (a stalled disk)
    while ever new clients flood cannot make that table grow past MAX_CLOSED: the rest wait
    merged per event type (client "*"), counts exact."""
    from observability.output.writer import writer

    monkeypatch.setattr(flood_windows, "MAX_KEYS", 20)
    monkeypatch.setattr(flood_windows, "MAX_CLOSED", 20)
    monkeypatch.setattr(writer, "hooks", [hook for hook in writer.hooks if hook != guard.sweep])
    for n in range(300):
        failed_logins(7, ip=f"10.1.{n >> 8}.{n & 0xFF}")
        assert len(guard._closed) <= 21 and guard.size() <= 20
    guard.sweep(final=True)
    individual, summaries = event_lines(logs, "login_failed")
    assert total(individual, summaries) == 300 * 7
    merged = [line for line in summaries if "client=* " in line + " "]
    assert len(merged) == 1 and "Repeated: " in merged[0] and "more from *" in merged[0]


def test_a_summary_shows_its_example_masked_then_capped(logs, limited):
    """A flood of forged Hosts 8 KB long: the summary's example holds at most 1 KiB of it,
    masked before it was cut (a card number across the cut is never half shown)."""
    prefix = "Invalid HTTP_HOST header: '"
    card = "4111 1111 1111 1111"
    host = "h" * (1015 - len(prefix)) + card + "x" * 7000  # the card spans the 1 KiB cut
    logger = logging.getLogger("django.security.DisallowedHost")
    with request_context(ip="198.51.100.60"):
        for _ in range(8):
            logger.error("Invalid HTTP_HOST header: '%s'.", host)
    (window,) = [w for w in guard._windows.values() if w.suppressed]
    assert len(window.example["message"]) <= 1100
    assert "4111" not in window.example["message"]
    drain_logs()
    (summary,) = message_lines(logs.lines("security"), "Invalid HTTP_HOST")[1]
    assert "4111" not in summary and "hhhh" in summary
    assert len(summary) < 2500


# ---------------------------------------------------------------------------- many sources


@pytest.fixture
def shared(settings):
    """The network and global budgets in the database cache every worker shares."""
    settings.OBSERVABILITY = {
        **settings.OBSERVABILITY,
        "FLOOD_LIMIT": 5,
        "FLOOD_WINDOW": 60,
        "FLOOD_NETWORK_LIMIT": 20,
        "FLOOD_GLOBAL_LIMIT": 60,
        "FLOOD_CACHE": "default",
    }


@pytest.mark.django_db
def test_addresses_rotated_inside_a_24_share_its_network_budget(logs, shared):
    """200 addresses of one /24, one failed login each: each is a client of its own, but
    together they write FLOOD_NETWORK_LIMIT lines, and one summary counts the rest."""
    with freeze_time(FUTURE):  # one window: the real clock could cross into the next
        for n in range(1, 201):
            failed_logins(1, ip=f"203.0.113.{n}")
        failed_logins(2, ip="198.51.100.9")  # another network still writes its own
    drain_logs()
    individual, summaries = event_lines(logs, "login_failed")
    assert len([line for line in individual if "203.0.113." in line]) == 20
    assert total(individual, summaries) == 202
    (summary,) = summaries
    assert parse_tokens(summary)["client"] == "203.0.113.0/24"
    assert parse_tokens(summary)["repeated"] == "180"
    assert len([line for line in individual if "ip=198.51.100.9 " in line]) == 2


@pytest.mark.django_db
def test_a_botnet_cannot_rotate_the_security_history_away(logs, shared):
    """500 addresses in 500 networks: FLOOD_GLOBAL_LIMIT lines in all, the rest counted in
    one summary per event type for every client ("*"), counts exact."""
    with freeze_time(FUTURE):  # one window: the real clock could cross into the next
        for n in range(500):
            failed_logins(1, ip=f"10.{n >> 8}.{n & 0xFF}.1")
    drain_logs()
    individual, summaries = event_lines(logs, "login_failed")
    assert len(individual) == 60
    assert total(individual, summaries) == 500
    assert [parse_tokens(line)["client"] for line in summaries] == ["*"]


@pytest.mark.django_db
def test_the_budgets_are_shared_by_every_process(logs, shared):
    """Another worker (nothing known but the cache) finds the budgets spent."""
    from observability.guard import flood_shared

    # One window: on the real clock, the last login could fall in the next one (a flake
    # seen: the 60 logins at 15:05:59.990, the last one at 15:06:00 was written).
    with freeze_time(FUTURE):
        for n in range(60):
            failed_logins(1, ip=f"10.{n}.0.1")
        flood_shared.forget()  # a new worker: no hint, and its own table empty
        guard.forget()
        failed_logins(1, ip="192.0.2.77")
    drain_logs()
    individual, summaries = event_lines(logs, "login_failed")
    assert len(individual) == 60 and total(individual, summaries) == 61
    assert "ip=192.0.2.77 " not in "\n".join(individual)


def test_a_bad_network_budget_is_refused_with_a_sentence():
    from observability.conf import validate

    (problem,) = validate({"FLOOD_IPV4_NETWORK_PREFIX": 33})
    assert "FLOOD_IPV4_NETWORK_PREFIX'] must be a prefix length from 8 to 32" in problem
    (problem,) = validate({"FLOOD_GLOBAL_LIMIT": -1})
    assert "FLOOD_GLOBAL_LIMIT'] must be a whole number" in problem and "got -1" in problem
    (problem,) = validate({"FLOOD_CACHE": "nowhere"})
    assert "FLOOD_CACHE'] must be the alias of a cache" in problem


@pytest.mark.django_db(transaction=True)
def test_the_budgets_outlive_a_transaction_that_rolls_back(logs, shared, settings):
    """Lines written inside a request's atomic block spend the budget in a transaction of
    their own (a helper thread's): a rollback cannot hand the budget back."""
    from django.db import connection, transaction

    from observability.guard import flood_shared

    if connection.vendor == "sqlite":
        pytest.skip("SQLite's in-memory test database locks tables across connections")
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "FLOOD_GLOBAL_LIMIT": 3}

    def failing_view() -> None:
        with transaction.atomic():
            for n in range(3):
                failed_logins(1, ip=f"10.{n}.0.1")
            raise ZeroDivisionError  # the view fails: its transaction rolls back

    with pytest.raises(ZeroDivisionError):
        failing_view()

    flood_shared.forget()  # another worker: only the cache knows
    guard.forget()
    failed_logins(1, ip="192.0.2.88")
    drain_logs()
    individual, summaries = event_lines(logs, "login_failed")
    assert len(individual) == 3 and total(individual, summaries) == 4
