"""logtrace on files written by real requests: traces, filters, listing, JSON, exit codes."""

from __future__ import annotations

import gzip
import itertools
import json
import shutil
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from freezegun import freeze_time

from observability.logtrace import LEVELS, Filters, parse_line
from tests import urls as test_urls
from tests.conftest import NOT_SLOW, configure_logs, slow_threshold, token_for
from tests.observability.loglines import (
    T0,
    ecs_line,
    json_line,
    request_lines,
    text_line,
    write,
)
from tests.polling import poll_until

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]


def run(capsys, *args) -> tuple[int, str, str]:
    try:
        call_command("logtrace", *args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    except CommandError as exc:
        code = exc.returncode
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def filled(logs, user, settings):
    """A few requests: one by john_doe, one anonymous, one failing, one slow."""
    client = Client(REMOTE_ADDR="10.0.0.7")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user)}"}
    ids = {
        "pay": client.post(
            "/api/v1/payments/",
            {"amount": "5.00", "currency": "USD", "payment_method": "pm_card_visa"},
            content_type="application/json",
            **auth,
        )["X-Request-ID"],
        "anon": Client(REMOTE_ADDR="10.0.0.8").get("/t/plain/")["X-Request-ID"],
        "boom": Client(raise_request_exception=False, REMOTE_ADDR="10.0.0.7").get("/t/boom/")[
            "X-Request-ID"
        ],
    }
    with freeze_time("2026-11-26 12:00:00") as freezer, slow_threshold(settings, 1.0):
        test_urls.clock.update(freezer=freezer, advance=2.0)
        ids["slow"] = client.get("/t/plain/")["X-Request-ID"]
    test_urls.clock.update(freezer=None, advance=0.0)
    logs.lines("requests")
    return logs, ids


def test_trace_shows_every_file_in_order_with_header(filled, capsys):
    logs, ids = filled
    code, out, _ = run(capsys, ids["pay"], "--dir", str(logs.path))
    assert code == 0
    assert "POST /api/v1/payments/  status=201" in out
    assert "user=john_doe" in out and "ip=10.0.0.7" in out
    assert "records: requests: 2, general: 4" in out  # with the gateway's span
    body = [line for line in out.splitlines() if line.startswith("[")]
    assert "API Request started" in body[0] and "API Request completed" in body[-1]
    assert all(ids["pay"] in line for line in body)
    assert not any(ids["anon"] in line for line in body)
    header = out.splitlines()[:4]  # neither SLOW nor FAILED: no space left where they go
    assert [line for line in header if line != line.rstrip()] == []


def test_traceback_kept_whole_with_its_record(filled, capsys):
    logs, ids = filled
    code, out, _ = run(capsys, ids["boom"], "--dir", str(logs.path))
    assert code == 0
    assert "FAILED" in out
    assert "| Traceback (most recent call last):" in out
    assert "| ValueError: kaboom" in out
    assert "[general+errors] " in out and "[requests+errors] " in out  # one record, both files


def test_records_split_across_rotated_backup_and_live_file(tmp_path, capsys, user):
    logs = configure_logs(tmp_path, max_bytes=100, backup_count=50)  # every write rotates
    for _ in range(3):
        Client().get("/t/plain/")
        logs.lines("requests")  # one write per batch: drain so the next write rotates
    rid = Client().get("/t/flush/", HTTP_X_REQUEST_ID="split-1")["X-Request-ID"]
    logs.lines("requests")
    assert list(tmp_path.glob("billing_api_requests.log.*"))
    backup = tmp_path / "billing_api_requests.log.1"  # holds split-1's started line
    with open(backup, "rb") as src, gzip.open(str(backup) + ".gz", "wb") as dst:
        shutil.copyfileobj(src, dst)  # a gzip backup is read too
    backup.unlink()
    code, out, _ = run(capsys, rid, "--dir", str(tmp_path))
    assert code == 0
    assert "requests.1: 1" in out and "requests: 1" in out
    body = [line for line in out.splitlines() if line.startswith("[")]
    assert body[0].startswith("[requests.1] ") and "API Request started" in body[0]
    assert body[-1].startswith("[requests] ") and "API Request completed" in body[-1]


def test_listing_and_filters(filled, capsys):
    logs, ids = filled
    d = str(logs.path)
    code, out, _ = run(capsys, "--dir", d)
    assert code == 0 and len(out.splitlines()) == 4
    assert run(capsys, "--dir", d, "--user", "john_doe")[1].count("\n") == 1
    assert ids["anon"] in run(capsys, "--dir", d, "--ip", "10.0.0.8")[1]
    assert ids["pay"] in run(capsys, "--dir", d, "--path", "/api/v1/pay")[1]
    slow = run(capsys, "--dir", d, "--slow")[1]
    assert ids["slow"] in slow and slow.count("\n") == 1
    errors = run(capsys, "--dir", d, "--errors")[1]
    assert ids["boom"] in errors and errors.count("\n") == 1
    assert ids["slow"] in run(capsys, "--dir", d, "--level", "WARNING")[1]
    assert run(capsys, "--dir", d, "--limit", "1")[1].count("\n") == 1
    assert run(capsys, "--dir", d, "--until", "2026-11-26T12:30:00")[1].count("\n") == 1
    assert ids["slow"] not in run(capsys, "--dir", d, "--since", "1h")[1]
    combined = run(capsys, "--dir", d, "--ip", "10.0.0.7", "--errors")[1]
    assert combined.count("\n") == 1


def listed(capsys, *args) -> list[str]:
    """The request IDs a listing prints, in its order."""
    return [line.split()[2] for line in run(capsys, *args)[1].splitlines()]


def test_limit_keeps_the_newest_printed_oldest_first(filled, capsys):
    logs, ids = filled
    d = str(logs.path)
    # the slow request ran under a frozen clock, earlier than the three others
    assert listed(capsys, "--dir", d) == [ids["slow"], ids["pay"], ids["anon"], ids["boom"]]
    assert listed(capsys, "--dir", d, "--limit", "2") == [ids["anon"], ids["boom"]]


def test_route_trace_and_status_filters(filled, capsys):
    logs, ids = filled
    d = str(logs.path)
    assert listed(capsys, "--dir", d, "--route", "t/plain/") == [ids["slow"], ids["anon"]]
    assert listed(capsys, "--dir", d, "--route", "api/v1/payments/") == [ids["pay"]]
    assert listed(capsys, "--dir", d, "--status", "5xx") == [ids["boom"]]
    assert listed(capsys, "--dir", d, "--status", "201") == [ids["pay"]]
    assert listed(capsys, "--dir", d, "--status", "2xx", "--ip", "10.0.0.7") == [
        ids["slow"],
        ids["pay"],
    ]
    line = next(line for line in logs.for_request(ids["anon"]) if "completed" in line)
    trace_id = parse_line(line).fields["trace_id"]
    assert listed(capsys, "--dir", d, "--trace", trace_id) == [ids["anon"]]
    listing = json.loads(run(capsys, "--dir", d, "--route", "t/boom/", "--json")[1])
    assert [(r["route"], r["status"], r["failed"]) for r in listing["requests"]] == [
        ("t/boom/", 500, True)
    ]
    assert run(capsys, "--dir", d, "--status", "4xx")[0] == 1


def test_ecs_lines_are_traced_and_listed(tmp_path, capsys):
    write(
        tmp_path / "billing_api_requests.log",
        request_lines("ecs-1", T0, fmt="ecs", route="api/v1/plans/", status=502, duration=0.25)
        + request_lines("ecs-2", T0 + timedelta(seconds=1), fmt="ecs"),
    )
    write(
        tmp_path / "billing_api_errors.log",
        [
            ecs_line(
                T0 + timedelta(milliseconds=100),
                "gateway down",
                "ERROR",
                "billing",
                request_id="ecs-1",
                traceback='Traceback (most recent call last):\n  File "x.py"\nOSError: down',
            )
        ],
    )
    code, out, _ = run(capsys, "ecs-1", "--dir", str(tmp_path))
    assert code == 0
    assert "GET /api/v1/plans/  status=502 duration=0.25s FAILED" in out
    assert "records: requests: 2, errors: 1" in out
    assert "[errors  ] 2026-11-26 12:00:00,100 ERROR [billing] gateway down" in out
    assert "           | OSError: down" in out
    assert listed(capsys, "--dir", str(tmp_path), "--route", "api/v1/plans/") == ["ecs-1"]
    assert listed(capsys, "--dir", str(tmp_path), "--status", "2xx") == ["ecs-2"]


def test_follow_filters_each_record_on_its_own_fields():
    line = (
        "2026-11-26 10:00:00,000 INFO [billing.api] API Request completed - Status: 404 | "
        "request_id=r user_id=3 username=bo ip=10.0.0.9 method=GET path=/api/v1/x/ "
        "trace_id=abc span_id=def status=404 route=api/v1/x/"
    )
    record = parse_line(line, "requests")
    assert Filters(user="bo", ip="10.0.0.9", route="api/v1/x/", status="4xx").record_matches(record)
    assert Filters(user="3", trace="abc", path="/api/", status="404").record_matches(record)
    for other in (
        Filters(user="al"),
        Filters(route="api/v1/y/"),
        Filters(status="2xx"),
        Filters(trace="x"),
        Filters(level=LEVELS["WARNING"]),
    ):
        assert not other.record_matches(record)


def test_json_output_and_json_input(tmp_path, capsys, user):
    logs = configure_logs(tmp_path, log_format="json")
    rid = Client().get("/t/plain/")["X-Request-ID"]
    logs.lines("requests")
    code, out, _ = run(capsys, rid, "--dir", str(tmp_path), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["summary"]["status"] == 200
    assert [r["file"] for r in data["records"]] == ["requests", "general", "requests"]
    listing = json.loads(run(capsys, "--dir", str(tmp_path), "--json")[1])
    assert listing["requests"][0]["request_id"] == rid


def test_nothing_found_exits_1(filled, capsys):
    logs, _ = filled
    code, out, err = run(capsys, "no-such-request", "--dir", str(logs.path))
    assert code == 1 and out == ""
    assert "nothing in" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since"),
        (["--limit", "0"], "--limit"),
        (["--dir", "/nonexistent/dir"], "--dir"),
        (["--status", "6xx"], "--status must be a class such as 5xx"),
        (["--status", "20"], "--status"),
    ],
)
def test_bad_arguments_exit_2(filled, args, message):
    logs, _ = filled
    full = args if "--dir" in args else [*args, "--dir", str(logs.path)]
    with pytest.raises(CommandError, match=message) as raised:
        call_command("logtrace", *full)
    assert raised.value.returncode == 2


def test_foreign_lines_are_skipped(filled, capsys):
    logs, ids = filled
    with open(logs.file("requests"), "a", encoding="utf-8") as handle:
        handle.write("garbage\n{not json\n2026-01-01 00:00:00,000 INFO [x] truncated")
        handle.write('\n{"timestamp": "bad"}\n\x00\x01binary\n')
    code, _out, _ = run(capsys, ids["pay"], "--dir", str(logs.path))
    assert code == 0
    assert run(capsys, "--dir", str(logs.path))[0] == 0


def test_follow_prints_new_records_of_the_request(tmp_path):
    """--follow keeps reading the live file and prints matching records as they arrive."""
    import os
    import subprocess
    import sys

    (tmp_path / "billing_api_requests.log").write_text("")
    env = {**os.environ, "LOG_BASE_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "logtrace",
            "--follow",
            "--ip",
            "10.0.0.9",
            "--dir",
            str(tmp_path),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    os.set_blocking(proc.stdout.fileno(), False)
    try:
        # Until it prints one as it follows: lines written before it reached its loop are
        # the listing's (or not printed at all), so write a new pair on every look.
        line = (
            "2026-11-26 10:00:00,000 INFO [billing.api] API Request started - x | request_id={rid} "
            "user_id=- username=- ip={ip} method=GET path=/x/\n"
        )
        printed: list[str] = []
        pairs = itertools.count(1)

        def followed() -> bool:
            n = next(pairs)
            with open(tmp_path / "billing_api_requests.log", "a", encoding="utf-8") as handle:
                handle.write(line.format(rid=f"f-{n}", ip="10.0.0.1"))
                handle.write(line.format(rid=f"f-{n}", ip="10.0.0.9"))
            printed.append((proc.stdout.read() or b"").decode())
            return "[requests] " in "".join(printed)

        poll_until(followed, timeout=60, interval=0.2)
        out = "".join(printed)
    finally:
        proc.kill()
        proc.wait(10)
    assert "[requests] " in out and "ip=10.0.0.9" in out
    assert "ip=10.0.0.1" not in out


# --- A reused ID whose first request was sampled out (finding 6) ---------------------------


@pytest.fixture
def reused_after_sampling(logs, user, settings):
    """john_doe's payment (a fast 201, sampled out: no lifecycle lines), then an anonymous
    client sends its request ID and gets a 401: the two overlap in no file but the general
    one, where only their span IDs tell them apart."""
    settings.OBSERVABILITY = {**NOT_SLOW, "SAMPLE_RATE": 0.0}
    rid = f"pay-{uuid.uuid4().hex[:12]}"
    paid = Client().post(
        "/api/v1/payments/",
        {"amount": "5.00", "currency": "USD", "payment_method": "pm_card_visa"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_for(user)}",
        HTTP_X_REQUEST_ID=rid,
    )
    assert paid.status_code == 201
    assert Client().get("/api/v1/payments/", HTTP_X_REQUEST_ID=rid).status_code == 401
    lifecycle = logs.for_request(rid)
    assert len(lifecycle) == 2 and all("payments" in line for line in lifecycle)  # the 401's
    return logs, rid


def test_a_reused_id_of_a_sampled_out_request_is_two_requests(reused_after_sampling, capsys):
    logs, rid = reused_after_sampling
    code, out, _ = run(capsys, rid, "--dir", str(logs.path))
    assert code == 0
    assert f"request {rid}: shared by 2 requests" in out
    first, second = out.split("--- request 1 of 2")[1].split("--- request 2 of 2")
    assert "payment_created" in first and "payment_created" not in second
    assert "status=401" in second and "user=john_doe" in first
    assert "no lifecycle lines" in first


def test_a_reused_id_of_a_sampled_out_request_in_json(reused_after_sampling, capsys):
    logs, rid = reused_after_sampling
    code, out, _ = run(capsys, rid, "--dir", str(logs.path), "--json")
    data = json.loads(out)
    assert code == 0 and data["shared_by"] == 2
    events = [
        [r["fields"].get("event_type") for r in request["records"]] for request in data["requests"]
    ]
    assert "payment_created" in events[0] and "payment_created" not in events[1]
    assert [r["summary"]["status"] for r in data["requests"]] == [None, 401]


@pytest.mark.parametrize("fmt", ["text", "json", "ecs"])
def test_a_request_id_reused_event_is_said_in_the_header(tmp_path, capsys, fmt):
    """The server's request_id_reused event is said before any request, in text and JSON,
    even when only one request of the two left lines."""
    make = {"text": text_line, "json": json_line, "ecs": ecs_line}[fmt]
    write(
        tmp_path / "billing_api_requests.log",
        request_lines("dup", T0, status=401, span_id="a" * 16, fmt=fmt),
    )
    write(
        tmp_path / "billing_api_security.log",
        [
            make(
                T0 + timedelta(milliseconds=1),
                "Security Event: request_id_reused - Severity: warning",
                "WARNING",
                "billing.security",
                request_id="dup",
                span_id="a" * 16,
                ip="203.0.113.9",
                event_type="request_id_reused",
            )
        ],
    )
    code, out, _ = run(capsys, "dup", "--dir", str(tmp_path))
    assert code == 0
    header = out.split("\nrequest dup\n")[0]
    assert "the server saw this ID sent again: request_id_reused at 12:00:00.001 UTC" in header
    assert "ip=203.0.113.9" in header
    data = json.loads(run(capsys, "dup", "--dir", str(tmp_path), "--json")[1])
    assert data["reused"] is True and data["shared_by"] == 1
    assert [e["fields"]["event_type"] for e in data["reused_events"]] == ["request_id_reused"]


def test_level_keeps_the_status_duration_and_user_in_the_header(logs, user, capsys, settings):
    """`<id> --level WARNING` shows only the warnings, under the request's whole header."""
    with freeze_time("2026-11-26 12:00:00") as freezer, slow_threshold(settings, 1.0):
        test_urls.clock.update(freezer=freezer, advance=2.0)
        rid = Client().get("/t/whoami/", HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")[
            "X-Request-ID"
        ]
    test_urls.clock.update(freezer=None, advance=0.0)
    logs.lines("requests")
    code, out, _ = run(capsys, rid, "--dir", str(logs.path), "--level", "WARNING")
    assert code == 0
    assert "GET /t/whoami/  status=200 duration=2.0s SLOW" in out
    assert "user=john_doe (ID " in out
    body = [line for line in out.splitlines() if line.startswith("[")]
    assert body and all(" WARNING " in line for line in body)


# --- Hostile text never reaches the terminal raw (finding 12) ------------------------------

UNSAFE = ("\x1b", "\x07", "\r", "\n", "\x00", "\x85", "\u2028", "\u202e", "\u2066", "\x9b")
HOSTILE_TEXT = "x\x1b[2J\x1b]0;pwned\x07\r\n[requests] forged\u202eevil\x85\u2028\u2066\x9b"
HOSTILE_URL = "x%1B%5B2J%07%0D%0A%5Brequests%5D%20forged%E2%80%AE%C2%85%E2%80%A8%E2%81%A6%C2%9B"
#: How every line of a story starts: a record is one line, whatever it holds.
STORY_LINES = ("[", "request ", "  ", "--- request ", "           | ")


def assert_clean(text: str) -> None:
    found = [hex(ord(char)) for char in UNSAFE if char in text.replace("\n", "")]
    assert not found, found


def assert_clean_json(data) -> None:
    """No string in the JSON (keys included) decodes to an unsafe character (jq -r prints it)."""
    if isinstance(data, dict):
        for key, value in data.items():
            assert_clean(key)
            assert_clean_json(value)
    elif isinstance(data, list):
        for value in data:
            assert_clean_json(value)
    elif isinstance(data, str):
        found = [hex(ord(char)) for char in UNSAFE if char in data]
        assert not found, (found, data)


@pytest.fixture(params=["text", "json", "ecs"])
def hostile_logs(request, tmp_path, db):
    """Real requests in each LOG_FORMAT, with hostile text in every field a client sets:
    path, query, user agent, username, Host, and the text a view logs."""
    logs = configure_logs(tmp_path, log_format=request.param)
    villain = get_user_model().objects.create_user(f"u{HOSTILE_TEXT}", password="villain-pass-1")
    client = Client(HTTP_USER_AGENT=f"ua{HOSTILE_TEXT}")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(villain)}"}
    whoami = client.get(f"/t/whoami/?q={HOSTILE_URL}", **auth)["X-Request-ID"]
    missing = client.get(f"/t/plain/{HOSTILE_URL}", HTTP_HOST=f"h{HOSTILE_URL}.example")
    lost = client.get(f"/t/plain/{HOSTILE_URL}")["X-Request-ID"]
    assert missing.status_code == 400 and whoami and lost
    logs.lines("requests")
    return logs, {"whoami": whoami, "lost": lost}


OUTPUTS = {
    "listing": lambda ids: [],
    "listing --json": lambda ids: ["--json"],
    "story": lambda ids: [ids["whoami"]],
    "story --json": lambda ids: [ids["whoami"], "--json"],
    "404 story": lambda ids: [ids["lost"]],
    "404 story --json": lambda ids: [ids["lost"], "--json"],
}


@pytest.mark.parametrize("output", OUTPUTS)
def test_every_output_escapes_control_and_bidi_characters(hostile_logs, capsys, output):
    logs, ids = hostile_logs
    code, out, err = run(capsys, *OUTPUTS[output](ids), "--dir", str(logs.path))
    assert code == 0 and out
    assert_clean(out)
    assert_clean(err)
    if "--json" in output:
        assert_clean_json(json.loads(out))
    elif output == "listing":
        assert all(line[:2] == "20" for line in out.splitlines())  # one line a request
    else:
        assert all(line.startswith(STORY_LINES) for line in out.splitlines() if line)
    assert "\\x1b[2J" in out or "\\\\x1b[2J" in out  # shown, as an escape


@pytest.mark.parametrize("as_json", [False, True])
def test_follow_escapes_control_and_bidi_characters(hostile_logs, capsys, monkeypatch, as_json):
    """--follow prints records as they are written: the hostile lines are written again into
    the emptied live files while it follows, then it is stopped as Ctrl-C would."""
    from types import SimpleNamespace

    from observability.logtrace import follow

    logs, _ = hostile_logs
    written = {path: path.read_bytes() for path in logs.path.glob("*.log")}
    for path in written:
        path.write_bytes(b"")
    looks = []

    def tick(_seconds):
        looks.append(1)
        if len(looks) > 1:
            raise KeyboardInterrupt
        for path, data in written.items():
            with open(path, "ab") as handle:
                handle.write(data)

    monkeypatch.setattr(follow, "time", SimpleNamespace(sleep=tick))
    code, out, err = run(
        capsys, "--follow", *(["--json"] if as_json else []), "--dir", str(logs.path)
    )
    assert code == 1  # nothing was there before it followed
    assert_clean(out)
    assert_clean(err)
    decoder, documents, at = json.JSONDecoder(), [], 0
    if as_json:
        while at < len(out.rstrip()):
            document, at = decoder.raw_decode(out, at)
            documents.append(document)
            at += len(out[at:]) - len(out[at:].lstrip())
        assert len(documents) > 5  # the listing's empty answer, then each record
        for document in documents:
            assert_clean_json(document)
    else:
        assert len([line for line in out.splitlines() if line.startswith("[")]) > 5
        assert all(line.startswith(STORY_LINES) for line in out.splitlines() if line)


def test_errors_escape_what_they_repeat(tmp_path, capsys):
    code, _out, err = run(capsys, f"id{HOSTILE_TEXT}", "--dir", str(tmp_path))
    assert code == 1 and "nothing in" in err
    assert_clean(err)
    with pytest.raises(CommandError) as raised:
        call_command("logtrace", "--dir", f"/nonexistent/{HOSTILE_TEXT}")
    assert_clean(str(raised.value))
    for option in ("--since", "--until", "--status"):
        with pytest.raises(CommandError) as raised:
            call_command("logtrace", option, HOSTILE_TEXT, "--dir", str(tmp_path))
        assert_clean(str(raised.value))
