"""The overview's sums (`logtrace.overview`) on a seeded set of lines: counts, groups, weights.

Lines are written by hand in each layout (text, JSON, ECS), in the live file and in rotated
backups, some inside the window and some before it; the expected numbers are counted here.
"""

from __future__ import annotations

import sysconfig
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from observability.lines.textline import render_field
from observability.logtrace.errorgroups import error_kind, own_frame
from observability.logtrace.overview import Budget, overview
from observability.masking.escaping import escape_traceback
from tests.observability.loglines import LAYOUTS, T0, stamp, text_line, write

NOW = T0 + timedelta(minutes=30, seconds=10)  # the window: T0 - 29 min to T0 + 31 min
REQUESTS = "billing_api_requests.log"
SECURITY = "billing_api_security.log"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/billing/views.py", line 40, in post\n'
    "    payment = services.payment_create(data)\n"
    '  File "/app/billing/services.py", line 88, in payment_create\n'
    "    return gateway.charge(amount)\n"
    '  File "/usr/lib/python3/dist-packages/stripe/api.py", line 12, in charge\n'
    "    raise ValueError(text)\n"
    "ValueError: card <b>declined</b>"
)
KEY_ERROR = (
    "Traceback (most recent call last):\n"
    '  File "/app/billing/selectors.py", line 7, in plan_get\n'
    "    return PLANS[code]\n"
    "KeyError: 'gold'"
)


def terminal(
    fmt: str,
    rid: str,
    end,
    *,
    status: int = 200,
    duration: float = 0.02,
    route: str = "api/v1/plans/",
    view: str = "billing.views.PlanListView",
    user_id: str = "1",
    sample_rate: float | None = None,
    traceback: str | None = None,
    error: str = "-",
) -> str:
    """One request's terminal line in the layout `fmt`."""
    failed = status >= 500
    word = "failed" if failed else "completed"
    message = f"API Request {word} - Status: {status}, Duration: {duration:.3f} seconds"
    if failed:
        message += f", Error: {error}"
    fields: dict[str, object] = {
        "request_id": rid,
        "user_id": user_id,
        "ip": "10.0.0.9",
        "span_id": f"s{rid}",
        "status": status,
        "duration": duration,
        "route": route,
        "view": view,
    }
    if sample_rate is not None:
        fields["sample_rate"] = sample_rate
    level = "ERROR" if failed else "INFO"
    if traceback is not None and fmt == "json":
        fields["exc_info"] = escape_traceback(traceback, bar=False)
    if traceback is not None and fmt == "ecs":
        fields["traceback"] = traceback
    line = LAYOUTS[fmt](end, message, level, **fields)
    if traceback is not None and fmt == "text":
        line += " | " + escape_traceback(traceback)
    return line


def started(fmt: str, rid: str, when) -> str:
    return LAYOUTS[fmt](when, "API Request started - Path: /x", request_id=rid, user_id="-")


def event(fmt: str, when, event_type: str, **fields: object) -> str:
    message = f"Security Event: {event_type} - Severity: warning"
    return LAYOUTS[fmt](
        when, message, "WARNING", "billing.security", event_type=event_type, **fields
    )


def seed(directory: Path, fmt: str, t0: datetime = T0) -> None:
    """60 requests (weighted) and 45 security events from t0 - 10 min to t0 + 9 min, and more
    before t0 - 40 min (outside a window of an hour to t0 + 30 min)."""
    live: list[str] = []
    at = t0 + timedelta(minutes=1)
    # 20 fast successes on one route, 10 of them sampled at 0.25: 10 + 10 x 4 = 50 requests
    for n in range(20):
        when = at + timedelta(seconds=n)
        live.append(started(fmt, f"ok{n}", when))
        rate = 0.25 if n % 2 else 1.0
        live.append(terminal(fmt, f"ok{n}", when, duration=0.01 * (n + 1), sample_rate=rate))
    # one slow report, two 404s (not errors)
    live.append(terminal(fmt, "slow1", at + timedelta(seconds=30), duration=2.5, route="r/"))
    live += [terminal(fmt, f"nf{n}", at + timedelta(seconds=40), status=404) for n in range(2)]
    # five failures: ValueError x3 (users 1, 2, 1), KeyError x1, a 500 without an exception
    pay = {"route": "api/v1/payments/", "view": "billing.views.PaymentListView"}
    for n, (minute, user) in enumerate([(2, "1"), (3, "2"), (5, "1")], 1):
        when = t0 + timedelta(minutes=minute)
        live.append(
            terminal(fmt, f"v{n}", when, status=500, user_id=user, traceback=TRACEBACK, **pay)
        )
    live.append(
        terminal(fmt, "k1", t0 + timedelta(minutes=4), status=500, traceback=KEY_ERROR, **pay)
    )
    live.append(terminal(fmt, "h1", t0 + timedelta(minutes=6), status=503, route="h/"))
    backup = [terminal(fmt, f"b{n}", t0 - timedelta(minutes=10), duration=0.05) for n in range(2)]
    old = [terminal(fmt, f"o{n}", t0 - timedelta(minutes=50)) for n in range(500)]
    write(directory / REQUESTS, live)
    write(directory / f"{REQUESTS}.1", backup)
    write(directory / f"{REQUESTS}.2", old)
    write(
        directory / SECURITY,
        [event(fmt, t0 - timedelta(hours=2), "login_failed")]  # before the window
        + [event(fmt, t0 + timedelta(minutes=1, seconds=n), "login_failed") for n in range(3)]
        + [event(fmt, t0 + timedelta(minutes=8), "login_failed", repeated=40)]
        + [event(fmt, t0 + timedelta(minutes=9), "token_verified") for _ in range(2)],
    )


@pytest.mark.parametrize("fmt", ["text", "json", "ecs"])
def test_the_counts_groups_and_weights_of_a_seeded_window(tmp_path, fmt):
    seed(tmp_path, fmt)
    found = overview(tmp_path, minutes=60, threshold=1.0, now=NOW, base="/app")
    assert found.minutes == 60 and found.start == T0 - timedelta(minutes=29)
    assert found.total_requests == pytest.approx(60)  # 50 + 1 + 2 + 5 + 2 from the backup
    assert found.total_errors == 5
    assert found.total_slow == 1
    assert found.reweighted and not found.partial
    minute = 30  # T0 + 1 min, as an index from the window's start
    assert found.requests[minute] == pytest.approx(53)  # the 50, the slow one, the 404s
    assert found.slow[minute] == 1 and found.errors[minute] == 0
    assert [found.errors[31], found.errors[32], found.errors[33]] == [1, 1, 1]
    assert found.requests[19] == 2  # the backup's, at T0 - 10 min

    top = found.error_groups[0]
    assert (top.exception, top.view) == ("ValueError", "billing.views.PaymentListView")
    assert top.frame == "billing/services.py in payment_create" and top.line == "88"
    assert (top.count, top.users) == (3, 2)
    assert top.first == T0 + timedelta(minutes=2) and top.last == T0 + timedelta(minutes=5)
    assert top.request_id == "v3" and top.span_id == "sv3"
    assert top.message == "card <b>declined</b>"  # as logged: the page escapes it
    kinds = {(g.exception, g.frame, g.count) for g in found.error_groups}
    assert kinds == {
        ("ValueError", "billing/services.py in payment_create", 3),
        ("KeyError", "billing/selectors.py in plan_get", 1),
        ("HTTP 503", "-", 1),
    }
    assert found.routes_by_p95[0].route == "r/" and found.routes_by_p95[0].p95 == 2.5
    by_errors = [(row.route, row.errors) for row in found.routes_by_errors]
    assert by_errors == [("api/v1/payments/", 4), ("h/", 1)]
    assert found.security == [("login_failed", 43), ("token_verified", 2)]
    # the window's lines were read, the backup before it was not
    assert found.lines_read < 100


def test_weighted_p95_counts_each_sampled_line_as_the_requests_it_stands_for(tmp_path):
    # 10 fast lines kept at 0.1 stand for 100 requests; 9 slow ones at rate 1 are 9 of 109
    lines = [terminal("text", f"f{n}", T0, duration=0.01, sample_rate=0.1) for n in range(10)] + [
        terminal("text", f"s{n}", T0, duration=3.0, sample_rate=1.0) for n in range(9)
    ]
    write(tmp_path / REQUESTS, lines)
    found = overview(tmp_path, minutes=60, threshold=1.0, now=NOW)
    (row,) = found.routes_by_p95
    assert row.requests == pytest.approx(109)
    assert row.p95 == 3.0  # 9 / 109 > 5 %: the p95 is slow
    write(tmp_path / REQUESTS, [terminal("text", f"g{n}", T0, duration=0.01) for n in range(100)])
    again = overview(tmp_path, minutes=60, threshold=1.0, now=NOW)
    assert again.routes_by_p95[0].p95 == 0.01  # 9 / 209 < 5 %
    # without re-weighting, 9 of 19 lines are slow: the p95 would be 3.0 either way, and the
    # total 119 rather than 209
    assert again.total_requests == pytest.approx(209)


def test_a_quoted_value_cannot_forge_a_status_or_a_route(tmp_path):
    """A username holding ` status=503 route=evil` is quoted: the real fields count."""
    forged = "x status=503 route=evil duration=99 sample_rate=0.001 y"
    line = (
        f"{stamp(T0)} INFO [billing.api] API Request completed - Status: 200, Duration: 0.010 "
        f"seconds |{render_field('request_id', 'q1')}{render_field('username', forged)}"
        f"{render_field('status', 200)}{render_field('duration', 0.01)}"
        f"{render_field('route', 'api/v1/plans/')}"
    )
    assert '"x status=503' in line
    write(tmp_path / REQUESTS, [line])
    found = overview(tmp_path, minutes=60, threshold=1.0, now=NOW)
    assert (found.total_requests, found.total_errors, found.total_slow) == (1, 0, 0)
    assert [row.route for row in found.routes_by_p95] == ["api/v1/plans/"]


def test_a_started_line_whose_path_reads_like_an_end_is_no_request(tmp_path):
    write(
        tmp_path / REQUESTS,
        [text_line(T0, "API Request started - Path: /] API Request failed", request_id="p")],
    )
    found = overview(tmp_path, minutes=60, threshold=1.0, now=NOW)
    assert found.total_requests == 0 and found.error_groups == []


def test_the_budget_bounds_the_work_and_says_what_was_covered(tmp_path):
    lines = [
        terminal("text", f"r{n}", T0 - timedelta(minutes=20) + timedelta(seconds=n))
        for n in range(1200)
    ]
    write(tmp_path / REQUESTS, lines)
    found = overview(tmp_path, minutes=60, threshold=1.0, now=NOW, budget=Budget(lines=300))
    assert found.partial and found.lines_read <= 300
    assert found.total_requests == 300  # the newest ones
    oldest_read = T0 - timedelta(minutes=5)  # line 900 of 1200
    assert found.covered_from is not None
    assert oldest_read <= found.covered_from <= oldest_read + timedelta(seconds=6)
    assert found.covered_index == 25  # T0 - 4:55 is in minute 24: 0 to 24 drawn as not read
    whole = overview(tmp_path, minutes=60, threshold=1.0, now=NOW)
    assert not whole.partial and whole.total_requests == 1200


def test_lines_after_the_window_and_foreign_lines_are_not_counted(tmp_path):
    write(
        tmp_path / REQUESTS,
        [
            "not a line of ours",
            terminal("text", "in", T0),
            "2026-13-99 99:99:99,999 garbage API Request completed",
            terminal("text", "later", NOW + timedelta(minutes=5)),
            '{"timestamp": "nonsense"}',
        ],
    )
    found = overview(tmp_path, minutes=60, threshold=1.0, now=NOW)
    assert found.total_requests == 1


def test_error_kind_without_a_traceback_and_with_library_frames_only():
    failed = "API Request failed - Status: 500, Duration: 0.1 seconds, Error: TimeoutError"
    assert error_kind(failed, "500", "").exception == "TimeoutError"
    assert error_kind(failed.replace("TimeoutError", "-"), "500", "").exception == "HTTP 500"
    library = (
        'Traceback (most recent call last):\\n  File "/venv/lib/python3.11/site-packages/'
        'django/core/handlers/base.py", line 197, in _get_response\\nOSError: disk'
    )
    kind = error_kind(failed, "500", library)
    assert (kind.exception, kind.frame, kind.message) == ("OSError", "-", "disk")
    stdlib = sysconfig.get_paths()["stdlib"]
    assert not own_frame(f"{stdlib}/json/decoder.py") and own_frame("/app/billing/x.py")


def test_json_lines_are_parsed_only_when_they_end_a_request_and_within_their_budget(tmp_path):
    lines = []
    for n in range(100):
        when = T0 - timedelta(minutes=10) + timedelta(seconds=n)
        lines += [started("json", f"j{n}", when), terminal("json", f"j{n}", when)]
    write(tmp_path / REQUESTS, lines)
    found = overview(tmp_path, minutes=60, threshold=1.0, now=NOW)
    assert found.total_requests == 100 and found.lines_parsed == 100  # not the started lines
    capped = overview(tmp_path, minutes=60, threshold=1.0, now=NOW, budget=Budget(parsed_whole=30))
    assert capped.partial and capped.total_requests == 30 and capped.lines_parsed == 30


def test_a_central_root_is_read_host_by_host_and_counted_together(tmp_path):
    """OBSERVABILITY['LOG_ROOT'] holds one folder per host (rsyslog's central layout): the
    overview counts every host's requests, errors and security events together."""
    for host in ("web-1", "web-2"):
        seed(tmp_path / host, "text")
    found = overview(tmp_path, minutes=60, threshold=1.0, now=NOW, base="/app")
    assert found.total_requests == pytest.approx(120)
    assert found.total_errors == 10 and found.total_slow == 2
    assert found.error_groups[0].count == 6
    assert found.security == [("login_failed", 86), ("token_verified", 4)]
