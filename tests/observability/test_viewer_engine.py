"""The engine the viewer reads with (observability.logtrace): newest-first listing, its filters,
shared IDs; and one request's records as the story page draws them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from observability.logtrace import Filters, files, list_requests, listing, search, story
from observability.viewer.timeline import field_values, marks
from tests.observability.loglines import (
    T0,
    ecs_line,
    json_line,
    request_lines,
    text_line,
    write,
)

REQUESTS = "billing_api_requests.log"


def many(count: int, *, start=T0, step: float = 1.0, prefix: str = "r", **kwargs) -> list[str]:
    lines = []
    for n in range(count):
        lines += request_lines(f"{prefix}{n:04d}", start + timedelta(seconds=n * step), **kwargs)
    return lines


def ids(page) -> list[str]:
    return [row.request_id for row in page.requests]


def test_newest_first_with_pages(tmp_path):
    write(tmp_path / REQUESTS, many(120))
    first = search(tmp_path, Filters(), offset=0, limit=50)
    assert ids(first) == [f"r{n:04d}" for n in range(119, 69, -1)]
    assert first.has_more
    last = search(tmp_path, Filters(), offset=100, limit=50)
    assert ids(last) == [f"r{n:04d}" for n in range(19, -1, -1)]
    assert not last.has_more


def test_listing_reads_only_the_end_of_a_large_file(tmp_path, monkeypatch):
    write(tmp_path / REQUESTS, many(20_000))
    parsed = []
    real = listing.parse_line

    def counting(line, tag=""):
        parsed.append(line)
        return real(line, tag)

    monkeypatch.setattr(listing, "parse_line", counting)
    page = search(tmp_path, Filters(), limit=50)
    assert ids(page)[0] == "r19999" and len(page.requests) == 50
    assert len(parsed) < 400, "the scan must stop once the page is certain"


def test_rotated_and_gzipped_backups_are_read_newest_first(tmp_path):
    write(tmp_path / f"{REQUESTS}.2.gz", many(3, start=T0))
    bob = many(3, start=T0 + timedelta(hours=1), user="bob", prefix="b")
    write(tmp_path / f"{REQUESTS}.1", bob[:-1])
    # bob's last request started in backup .1 and ended in the live file
    write(tmp_path / REQUESTS, bob[-1:] + request_lines("live", T0 + timedelta(hours=2)))
    rows = search(tmp_path, Filters()).requests
    assert [r.request_id for r in rows] == [
        "live",
        *("b0002", "b0001", "b0000"),
        *("r0002", "r0001", "r0000"),
    ]
    assert rows[1].status == "200" and rows[1].first == T0 + timedelta(hours=1, seconds=2)
    assert [r.username for r in rows[4:]] == ["alice"] * 3
    assert ids(search(tmp_path, Filters(user="bob"))) == ["b0002", "b0001", "b0000"]


def test_filters_named_like_logtrace(tmp_path):
    write(
        tmp_path / REQUESTS,
        request_lines("pay", T0, path="/api/v1/payments/", method="POST", status=201)
        + request_lines("anon", T0 + timedelta(seconds=1), user="-", user_id="-", ip="10.0.0.8")
        + request_lines("boom", T0 + timedelta(seconds=2), status=500, path="/t/boom/")
        + request_lines("slow", T0 + timedelta(seconds=3), duration=2.5, slow=True)
        + request_lines("gone", T0 + timedelta(seconds=4), status=404, user="bob", user_id=2),
    )

    def found(**kwargs) -> set[str]:
        return {r.request_id for r in search(tmp_path, Filters(**kwargs)).requests}

    assert found(user="alice") == {"pay", "boom", "slow"}
    assert found(user="2") == {"gone"}
    assert found(ip="10.0.0.8") == {"anon"}
    assert found(path="/api/v1/pay") == {"pay"}
    assert found(status="5xx") == {"boom"} == found(errors=True)
    assert found(status="404") == {"gone"}
    assert found(status="2xx") == {"pay", "anon", "slow"}
    assert found(slow=True) == {"slow"}
    assert found(since=T0 + timedelta(seconds=2)) == {"boom", "slow", "gone"}
    assert found(until=T0 + timedelta(seconds=1)) == {"pay", "anon"}
    slow = search(tmp_path, Filters(slow=True)).requests[0]
    assert slow.seconds == 2.5 and slow.slow and not slow.failed


def test_trace_and_route_filters_when_lines_carry_them(tmp_path):
    trace_a, trace_b = "a" * 32, "b" * 32
    write(
        tmp_path / REQUESTS,
        request_lines("one", T0, trace_id=trace_a, span_id="1" * 16, route="api/v1/plans/")
        + request_lines(
            "two",
            T0 + timedelta(seconds=1),
            trace_id=trace_b,
            span_id="2" * 16,
            route="api/v1/payments/<int:pk>/",
        )
        + request_lines("old", T0 + timedelta(seconds=2)),
    )
    assert ids(search(tmp_path, Filters(trace=trace_a))) == ["one"]
    assert ids(search(tmp_path, Filters(route="api/v1/payments/<int:pk>/"))) == ["two"]
    rows = {r.request_id: r for r in search(tmp_path, Filters()).requests}
    assert rows["one"].trace_id == trace_a and rows["one"].span_id == "1" * 16
    assert rows["old"].trace_id == "-" and rows["old"].route == "-"


def test_request_in_flight_is_listed_without_status(tmp_path):
    write(
        tmp_path / REQUESTS,
        request_lines("done", T0) + request_lines("running", T0 + timedelta(seconds=1))[:1],
    )
    rows = search(tmp_path, Filters()).requests
    assert [r.request_id for r in rows] == ["running", "done"]
    assert rows[0].status == "-" and not rows[0].ended


def test_a_reused_request_id_is_two_rows(tmp_path):
    write(
        tmp_path / REQUESTS,
        request_lines("same", T0, status=201)
        + request_lines("same", T0 + timedelta(seconds=5), status=500),
    )
    rows = search(tmp_path, Filters()).requests
    assert [(r.request_id, r.status) for r in rows] == [("same", "500"), ("same", "201")]


def test_without_started_lines_terminal_lines_suffice(tmp_path):
    write(tmp_path / REQUESTS, many(5, started=False))
    rows = search(tmp_path, Filters()).requests
    assert [r.request_id for r in rows] == ["r0004", "r0003", "r0002", "r0001", "r0000"]
    assert rows[0].first == T0 + timedelta(seconds=4)


def test_since_stops_the_scan(tmp_path, monkeypatch):
    write(tmp_path / REQUESTS, many(5000))
    calls = []
    real = listing.parse_line
    monkeypatch.setattr(
        listing, "parse_line", lambda line, tag="": calls.append(1) or real(line, tag)
    )
    rows = search(tmp_path, Filters(since=T0 + timedelta(seconds=4990))).requests
    assert len(rows) == 10
    assert len(calls) < 100


def test_json_lines_are_listed_too(tmp_path):
    write(tmp_path / REQUESTS, many(3, fmt="json", user="jay"))
    rows = search(tmp_path, Filters(user="jay")).requests
    assert [r.request_id for r in rows] == ["r0002", "r0001", "r0000"]
    assert rows[0].status == "200"


def test_bad_status_class_is_refused():
    with pytest.raises(ValueError, match="status must be a class such as 5xx"):
        Filters(status="6xx")


def test_story_keeps_the_requests_that_shared_an_id_apart(tmp_path):
    first, second = T0, T0 + timedelta(seconds=10)
    write(
        tmp_path / REQUESTS,
        request_lines("dup", first, status=201) + request_lines("dup", second, status=500),
    )
    write(
        tmp_path / "billing_api.log",
        [
            text_line(
                first + timedelta(milliseconds=5), "first event", request_id="dup", payment_id=1
            ),
            text_line(
                second + timedelta(milliseconds=5), "second event", request_id="dup", payment_id=2
            ),
        ],
    )
    found = story(tmp_path, "dup")
    assert len(found.requests) == 2 and found.nearest() == 1
    newest, records = found.requests[1]
    assert [r.message for r in records if r.lane == "general"] == ["second event"]
    assert newest.status == "500" and field_values(records)["payment_id"] == ["2"]
    older, records = found.requests[found.nearest(found.requests[0][0].started_ms)]
    assert [r.message for r in records if r.lane == "general"] == ["first event"]
    assert older.status == "201" and len(records) == 3


def test_story_splits_by_span_id_when_present(tmp_path):
    start = T0
    # two overlapping requests with one ID: only the span ID tells their records apart
    write(
        tmp_path / REQUESTS,
        request_lines("dup", start, duration=1.0, span_id="a" * 16)
        + request_lines("dup", start + timedelta(milliseconds=100), duration=1.0, span_id="b" * 16),
    )
    write(
        tmp_path / "billing_api.log",
        [
            text_line(
                start + timedelta(milliseconds=500), "of a", request_id="dup", span_id="a" * 16
            ),
            text_line(
                start + timedelta(milliseconds=600), "of b", request_id="dup", span_id="b" * 16
            ),
        ],
    )
    found = story(tmp_path, "dup")
    assert len(found.requests) == 2
    row, records = found.requests[found.nearest(int(start.timestamp() * 1000))]
    assert [r.message for r in records if r.lane == "general"] == ["of a"]
    assert row.span_id == "a" * 16


def test_story_of_an_unknown_id_is_none(tmp_path):
    write(tmp_path / REQUESTS, request_lines("known", T0))
    assert story(tmp_path, "unknown") is None


def test_story_offsets_lanes_and_tracebacks(tmp_path):
    lines = request_lines("boom", T0, status=500, duration=0.25)
    write(tmp_path / REQUESTS, lines)
    write(tmp_path / "billing_api_errors.log", lines[-1:])  # ERROR: the failed line, copied
    write(
        tmp_path / "billing_api_errors.log",
        [
            text_line(
                T0 + timedelta(milliseconds=200),
                "Internal Server Error: /t/boom/",
                "ERROR",
                "django.request",
                request_id="boom",
            )
            + ' | Traceback (most recent call last):\\n  File "x.py", line 1\\nValueError: kaboom'
        ],
    )
    found = story(tmp_path, "boom")
    assert len(found.requests) == 1  # the copy in the errors file is the same request
    row, records = found.requests[0]
    drawn = marks(records, row.first)
    assert [m.record.lane for m in drawn][:2] == ["requests", "errors"]
    assert sorted(m.record.lane for m in drawn[2:]) == ["errors", "requests"]
    error = drawn[1]
    assert error.offset_ms == pytest.approx(200)
    assert error.traceback.splitlines()[-1] == "ValueError: kaboom"
    assert error.level_class == "error"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_lines_skipped_unparsed_never_hide_a_match(tmp_path, fmt):
    """Listing errors or slow requests skips lines by their message; a client's text can't hide."""
    decoy = '"/x] API Request completed - Status: 200"'
    write(
        tmp_path / REQUESTS,
        request_lines("hidden?", T0, status=500, path=decoy, fmt=fmt)
        + request_lines(
            "slow-fail", T0 + timedelta(seconds=1), status=503, duration=3, slow=True, fmt=fmt
        )
        + request_lines("slow-ok", T0 + timedelta(seconds=2), duration=2, slow=True, fmt=fmt)
        + many(30, start=T0 + timedelta(seconds=3), fmt=fmt),
    )
    errors = search(tmp_path, Filters(errors=True)).requests
    assert [(r.request_id, r.status, r.slow) for r in errors] == [
        ("slow-fail", "503", True),
        ("hidden?", "500", False),
    ]
    slow = search(tmp_path, Filters(slow=True)).requests
    assert [(r.request_id, r.status) for r in slow] == [("slow-ok", "200"), ("slow-fail", "503")]
    assert ids(search(tmp_path, Filters(status="5xx", slow=True))) == ["slow-fail"]


def test_many_slow_warnings_of_other_requests_are_let_go(tmp_path):
    lines = request_lines("alice-slow", T0, duration=2, slow=True, route="api/v1/plans/")
    for n in range(40):
        lines += request_lines(
            f"bob{n}", T0 + timedelta(seconds=10 + n), user="bob", duration=2, slow=True
        )
    write(tmp_path / REQUESTS, lines)
    rows = search(tmp_path, Filters(route="api/v1/plans/")).requests
    assert [(r.request_id, r.slow) for r in rows] == [("alice-slow", True)]
    assert len(search(tmp_path, Filters(user="bob", slow=True)).requests) == 40


def test_ecs_lines_are_listed_filtered_and_traced(tmp_path):
    write(
        tmp_path / REQUESTS,
        request_lines("e-1", T0, fmt="ecs", user="eve", route="api/v1/plans/", trace_id="c" * 32)
        + request_lines("e-2", T0 + timedelta(seconds=1), fmt="ecs", status=503, duration=1.5)
        + request_lines("e-3", T0 + timedelta(seconds=2), fmt="ecs", duration=2.0, slow=True),
    )
    rows = {row.request_id: row for row in search(tmp_path, Filters()).requests}
    assert list(rows) == ["e-3", "e-2", "e-1"]
    assert rows["e-1"].route == "api/v1/plans/" and rows["e-1"].username == "eve"
    assert rows["e-2"].status == "503" and rows["e-2"].failed and rows["e-2"].seconds == 1.5
    assert rows["e-3"].slow and rows["e-3"].first == T0 + timedelta(seconds=2)
    assert ids(search(tmp_path, Filters(user="eve"))) == ["e-1"]
    assert ids(search(tmp_path, Filters(route="api/v1/plans/"))) == ["e-1"]
    assert ids(search(tmp_path, Filters(trace="c" * 32))) == ["e-1"]
    assert (
        ids(search(tmp_path, Filters(status="5xx")))
        == ["e-2"]
        == ids(search(tmp_path, Filters(errors=True)))
    )
    assert ids(search(tmp_path, Filters(slow=True))) == ["e-3"]
    row, records = story(tmp_path, "e-2").requests[0]
    assert [r.level for r in records] == ["INFO", "ERROR"]
    assert row.method == "GET" and row.duration == "1.5"


def test_one_file_in_three_layouts_is_read_whole(tmp_path):
    """A deploy that switches LOG_FORMAT leaves text, JSON and ECS lines in one file."""
    write(
        tmp_path / REQUESTS,
        request_lines("t", T0)
        + request_lines("j", T0 + timedelta(seconds=1), fmt="json")
        + request_lines("e", T0 + timedelta(seconds=2), fmt="ecs"),
    )
    assert ids(search(tmp_path, Filters(user="alice"))) == ["e", "j", "t"]
    assert ids(search(tmp_path, Filters(status="200", ip="10.0.0.1"))) == ["e", "j", "t"]


def test_file_names_come_from_the_log_files_setting(tmp_path, settings):
    settings.OBSERVABILITY = {
        **settings.OBSERVABILITY,
        "LOG_FILES": {"requests": "lifecycle.log", "general": "app.log"},
    }
    write(tmp_path / REQUESTS, request_lines("not-ours", T0))  # the seed's name: not read now
    write(tmp_path / "lifecycle.log.1", request_lines("old", T0 + timedelta(seconds=1)))
    write(tmp_path / "lifecycle.log", request_lines("new", T0 + timedelta(seconds=2)))
    write(
        tmp_path / "app.log",
        [text_line(T0 + timedelta(seconds=2, milliseconds=5), "an event", request_id="new")],
    )
    assert ids(search(tmp_path, Filters())) == ["new", "old"]
    _row, records = story(tmp_path, "new").requests[0]
    assert [r.file for r in records] == ["requests", "general", "requests"]
    assert story(tmp_path, "not-ours") is None


def test_list_requests_gives_the_newest_oldest_first(tmp_path):
    write(tmp_path / REQUESTS, many(30))
    assert [s.request_id for s in list_requests(tmp_path, Filters(), 3)] == [
        "r0027",
        "r0028",
        "r0029",
    ]


def test_overlapping_requests_sharing_an_id_pair_their_lines_by_span_id(tmp_path):
    # a started, b started, b ended, a ended: only the span IDs pair the lines rightly
    a = request_lines("dup", T0, duration=1.0, span_id="a" * 16)
    b = request_lines("dup", T0 + timedelta(milliseconds=100), duration=0.2, span_id="b" * 16)
    write(tmp_path / REQUESTS, [a[0], b[0], b[1], a[1]])
    found = story(tmp_path, "dup")
    assert [(row.span_id, row.first, len(group)) for row, group in found.requests] == [
        ("a" * 16, T0, 2),
        ("b" * 16, T0 + timedelta(milliseconds=100), 2),
    ]


@pytest.mark.parametrize("block", [7, 64, 1 << 18])
def test_lines_backwards_across_blocks_leaves_a_line_being_written(tmp_path, monkeypatch, block):
    monkeypatch.setattr(files, "BLOCK", block)
    path = tmp_path / "x.log"
    path.write_bytes(b"first line\n\nsecond, a longer line than one block\nthird\nbeing wri")
    assert list(files.lines_backwards(path)) == [
        b"third",
        b"second, a longer line than one block",
        b"first line",
    ]
    path.write_bytes(b"no line break yet")
    assert list(files.lines_backwards(path)) == []


def test_a_request_written_late_by_another_process_still_takes_its_place(tmp_path):
    lines = many(60)
    late = request_lines("late", T0 + timedelta(seconds=58.5))
    at = lines.index(next(line for line in lines if "request_id=r0056" in line))
    write(tmp_path / REQUESTS, lines[:at] + late + lines[at:])  # behind three newer requests
    assert ids(search(tmp_path, Filters(), limit=3)) == ["r0059", "late", "r0058"]


def test_values_that_need_quoting_or_escaping_still_find_their_requests(tmp_path):
    write(
        tmp_path / REQUESTS,
        # written as the formatter quotes it (the helper writes values as they are given)
        request_lines("spaced", T0, user='"Ann Lee"', route="api/v1/payments/<int:pk>/")
        + request_lines("tabbed", T0 + timedelta(seconds=1), user="tab\there", fmt="json")
        + request_lines("plain", T0 + timedelta(seconds=2), user="Ann", user_id=7)
        + request_lines("json-int", T0 + timedelta(seconds=3), user="jo", user_id=7, fmt="json"),
    )
    assert ids(search(tmp_path, Filters(user="Ann Lee"))) == ["spaced"]
    assert ids(search(tmp_path, Filters(user="tab\there"))) == ["tabbed"]
    assert ids(search(tmp_path, Filters(user="7"))) == ["json-int", "plain"]
    assert ids(search(tmp_path, Filters(route="api/v1/payments/<int:pk>/"))) == ["spaced"]


def test_a_field_that_ends_the_line_is_found(tmp_path):
    done = T0 + timedelta(milliseconds=20)
    message = "API Request completed - Status: 404, Duration: 0.020 seconds"
    write(
        tmp_path / REQUESTS,
        [
            text_line(done, message, request_id="last", duration=0.02, route="x/", status=404),
            text_line(done, message, request_id="not", duration=0.02, route="x/y/", status=4040),
        ],
    )
    assert ids(search(tmp_path, Filters(status="404", route="x/"))) == ["last"]


# --- A reused ID whose first request was sampled out (finding 6) ---------------------------

VICTIM_SPAN, ATTACKER_SPAN = "v" * 16, "a" * 16


def reused_after_sampling(directory, fmt: str) -> None:
    """A victim's fast success, sampled out (no lifecycle lines), and an attacker's 401 under
    the same ID that overlaps it in time: only the span IDs tell the two apart."""
    make = {"text": text_line, "json": json_line, "ecs": ecs_line}[fmt]
    victim = {"request_id": "dup", "span_id": VICTIM_SPAN, "ip": "10.0.0.5", "method": "POST"}
    write(
        directory / "billing_api.log",
        [
            make(
                T0 + timedelta(milliseconds=30),
                "Billing Event: payment_created - User: 7",
                "INFO",
                "billing.events",
                **victim,
                path="/api/v1/payments/",
                user_id=7,
                username="victim",
                event_type="payment_created",
                payment_id=41,
            )
        ],
    )
    write(
        directory / REQUESTS,
        request_lines(
            "dup",
            T0,
            status=401,
            duration=0.1,
            span_id=ATTACKER_SPAN,
            user="-",
            user_id="-",
            ip="203.0.113.9",
            fmt=fmt,
        ),
    )
    write(
        directory / "billing_api_security.log",
        [
            make(
                T0 + timedelta(milliseconds=1),
                "Security Event: request_id_reused - Severity: warning",
                "WARNING",
                "billing.security",
                request_id="dup",
                span_id=ATTACKER_SPAN,
                ip="203.0.113.9",
                event_type="request_id_reused",
                severity="warning",
            )
        ],
    )


@pytest.mark.parametrize("fmt", ["text", "json", "ecs"])
def test_records_of_a_span_without_lifecycle_lines_are_another_request(tmp_path, fmt):
    reused_after_sampling(tmp_path, fmt)
    found = story(tmp_path, "dup")
    assert len(found.requests) == 2  # "shared by 2 requests"
    by_span = {row.span_id: (row, group) for row, group in found.requests}
    attacker, attacker_records = by_span[ATTACKER_SPAN]
    victim, victim_records = by_span[VICTIM_SPAN]
    assert attacker.status == "401" and attacker.ip == "203.0.113.9"
    assert "payment_created" not in [r.fields.get("event_type") for r in attacker_records]
    assert [r.fields.get("event_type") for r in victim_records] == ["payment_created"]
    assert victim.username == "victim" and victim.ip == "10.0.0.5" and not victim.ended
    assert [r.fields["event_type"] for r in found.reused] == ["request_id_reused"]


def test_a_story_without_reuse_has_no_reused_event(tmp_path):
    write(tmp_path / REQUESTS, request_lines("one", T0, span_id="1" * 16))
    found = story(tmp_path, "one")
    assert len(found.requests) == 1 and found.reused == []


def test_records_without_span_ids_still_go_by_time_beside_ones_with_them(tmp_path):
    """Old lines (no span_id) keep the time-based split; a span with no lifecycle is apart."""
    write(
        tmp_path / REQUESTS,
        request_lines("mix", T0, status=201) + request_lines("mix", T0 + timedelta(seconds=10)),
    )
    write(
        tmp_path / "billing_api.log",
        [
            text_line(T0 + timedelta(milliseconds=5), "old first", request_id="mix"),
            text_line(T0 + timedelta(seconds=10, milliseconds=5), "old second", request_id="mix"),
            text_line(T0 + timedelta(seconds=5), "sampled out", request_id="mix", span_id="c" * 16),
        ],
    )
    found = story(tmp_path, "mix")
    messages = [[r.message for r in group if r.lane == "general"] for _, group in found.requests]
    assert messages == [["old first"], ["sampled out"], ["old second"]]


# --- Bounded work per page (finding 22) ------------------------------------------------------


def counting(monkeypatch, module, name: str) -> list[int]:
    """Count the calls of `module.name` (lines parsed, lines read)."""
    calls: list[int] = []
    real = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def lines_read(monkeypatch) -> list[int]:
    """Count the lines the listing reads (every line it is given, parsed or not)."""
    read: list[int] = []
    real = listing.newest_first

    def counted(*args, **kwargs):
        for item in real(*args, **kwargs):
            read.append(1)
            yield item

    monkeypatch.setattr(listing, "newest_first", counted)
    return read


def test_the_story_of_an_id_reads_only_lines_holding_it_as_a_whole_value(tmp_path, monkeypatch):
    from observability.logtrace import requests as requests_module

    lines = []
    for fmt in ("text", "json", "ecs"):
        lines += many(200, fmt=fmt, prefix=f"{fmt}.a.")
    lines += request_lines("a", T0, fmt="ecs") + request_lines("a", T0, fmt="json")
    lines += request_lines("a", T0 + timedelta(seconds=1))
    write(tmp_path / REQUESTS, lines)
    parsed = counting(monkeypatch, requests_module, "parse_line")
    assert story(tmp_path, ".") is None
    assert story(tmp_path, "a.") is None
    assert parsed == []  # every line holds a dot, and "a." starts 600 IDs: none is read
    found = story(tmp_path, "a")
    assert len(found.records) == 6 and len(parsed) == 6


def test_the_story_of_an_id_shared_by_very_many_requests_is_bounded(tmp_path, monkeypatch):
    from observability.logtrace import requests as requests_module

    lines = [line for n in range(3000) for line in request_lines("same", T0 + timedelta(seconds=n))]
    write(tmp_path / REQUESTS, lines)
    parsed = counting(monkeypatch, requests_module, "parse_line")
    found = story(tmp_path, "same", limit=500)
    assert found.partial and len(parsed) <= 500
    assert found.requests[-1][0].first == T0 + timedelta(seconds=2999)  # the newest are kept


def test_a_listing_page_has_a_scan_budget(tmp_path, monkeypatch):
    write(tmp_path / REQUESTS, many(5000))
    read = lines_read(monkeypatch)
    parsed = counting(monkeypatch, listing, "parse_line")
    budget = listing.Budget(lines=2000, parsed=400)
    page = search(tmp_path, Filters(), offset=999 * 50, limit=50, budget=budget)
    assert page.partial and page.requests == [] and page.resume is not None
    assert len(read) <= 2000 and len(parsed) <= 400
    read.clear()
    nobody = search(tmp_path, Filters(user="nobody"), budget=budget)
    assert nobody.partial and nobody.requests == [] and len(read) <= 2000


def test_a_page_within_the_budget_is_whole(tmp_path):
    write(tmp_path / REQUESTS, many(300))
    page = search(tmp_path, Filters(), limit=50, budget=listing.Budget(lines=2000, parsed=400))
    assert not page.partial and page.has_more and ids(page)[0] == "r0299"


@pytest.mark.parametrize("fmt", ["text", "json", "ecs"])
def test_continuing_a_partial_listing_finds_every_request_once(tmp_path, monkeypatch, fmt):
    # 900 requests over three files (a gzipped backup, a backup, the live file); bob's are
    # one in three, and overlapping neighbours are a little out of time order
    lines = []
    for n in range(900):
        user = "bob" if n % 3 == 0 else "alice"
        lines += request_lines(
            f"r{n:04d}", T0 + timedelta(seconds=n * 0.5), user=user, duration=0.8, fmt=fmt
        )
    write(tmp_path / f"{REQUESTS}.2.gz", lines[:600])
    write(tmp_path / f"{REQUESTS}.1", lines[600:1200])
    write(tmp_path / REQUESTS, lines[1200:])
    expected = [f"r{n:04d}" for n in range(899, -1, -1) if n % 3 == 0]
    read = lines_read(monkeypatch)
    budget = listing.Budget(lines=300, parsed=120)
    # as a staff member clicks: "Older" while there are more, "Continue" on a partial page
    before, offset, seen, pages = None, 0, [], 0
    while True:
        page = search(
            tmp_path, Filters(user="bob"), offset=offset, limit=50, budget=budget, before=before
        )
        assert len(read) <= 300
        read.clear()
        seen += ids(page)
        pages += 1
        assert pages < 200
        if page.has_more:
            offset += 50
        elif page.partial:
            assert page.resume is not None
            before, offset = page.resume, 0
        else:
            break
    assert seen == expected  # every one of bob's requests, once, newest first
    assert pages > 3


def test_going_on_from_a_point_seeks_instead_of_reading_every_newer_line(tmp_path, monkeypatch):
    write(tmp_path / f"{REQUESTS}.1", many(10_000))
    write(tmp_path / REQUESTS, many(10_000, start=T0 + timedelta(seconds=10_000), prefix="n"))
    read = lines_read(monkeypatch)
    page = search(tmp_path, Filters(), limit=5, before=T0 + timedelta(seconds=3000))
    assert ids(page) == ["r3000", "r2999", "r2998", "r2997", "r2996"]
    assert len(read) < 500  # not the 34,000 lines written after it


def lines_run(call) -> int:
    """How many lines of Python `call` runs (its work, whatever the machine's speed)."""
    import sys

    count = 0

    def tracer(frame, event, _arg):
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        call()
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize("spans", [True, False])
def test_splitting_an_id_shared_by_many_requests_is_linear(spans):
    """A client can send one ID with thousands of requests: the split stays linear."""
    from observability.logtrace import parse_line
    from observability.logtrace.splitting import split_by_request

    def records(count: int):
        out = []
        for n in range(count):
            start = T0 + timedelta(seconds=n)
            span = {"span_id": f"{n:016x}"} if spans else {}
            lines = request_lines("same", start, **span)
            out += [parse_line(line, "requests") for line in lines]
            event = text_line(start + timedelta(milliseconds=5), "event", request_id="same", **span)
            out.append(parse_line(event, "general"))
        return sorted(out, key=lambda r: r.time)

    small, large = records(300), records(1200)
    assert len(split_by_request(large)) == 1200
    ratio = lines_run(lambda: split_by_request(large)) / lines_run(lambda: split_by_request(small))
    assert ratio < 4 * 1.3  # four times the records: about four times the work, not sixteen


def test_overlapping_requests_sharing_an_id_are_listed_apart_by_span_id(tmp_path):
    """A client sends one ID twice at once: neither row takes the other's lines (no ghost
    request "in flight", no slow warning given to the wrong one)."""
    a = request_lines("dup", T0, duration=1.0, span_id="a" * 16, slow=True, status=500)
    b = request_lines(
        "dup", T0 + timedelta(milliseconds=100), duration=1.1, span_id="b" * 16, slow=True
    )
    write(tmp_path / REQUESTS, [a[0], b[0], a[1], b[1], b[2], a[2]])
    rows = search(tmp_path, Filters()).requests
    assert [(r.span_id[0], r.status, r.slow, r.ended) for r in rows] == [
        ("b", "200", True, True),
        ("a", "500", True, True),
    ]
    assert [r.span_id[0] for r in search(tmp_path, Filters(errors=True)).requests] == ["a"]


@pytest.mark.parametrize("fmt", ["text", "json", "ecs"])
def test_quick_time_reads_what_a_whole_parse_reads(fmt):
    from observability.logtrace.records import line_time, quick_time

    lines = request_lines("q", T0 + timedelta(milliseconds=123), fmt=fmt, slow=True)
    assert quick_time(lines[0].encode()) == T0 + timedelta(milliseconds=123)
    for line in lines:
        assert quick_time(line.encode()) == line_time(line) is not None
    for foreign in (b"garbage", b"2026-11-26 12:00:00", b'{"message": "x"}', b"", b"\xff" * 30):
        assert quick_time(foreign) is None
