"""The line grammars: what the formatters write (text, JSON; ECS as ecs-logging writes it),
logtrace reads back exactly; no value forges."""

from __future__ import annotations

import contextlib
import io
import logging
import sys

import pytest
from django.core.management import call_command
from django.test import Client
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from observability.formatters import ApiFormatter, DetailedFormatter, JsonFormatter
from observability.lines.textline import render_key
from observability.logtrace import parse_line
from observability.masking.escaping import escape, escape_traceback, unescape_traceback
from tests.polling import DEADLINE

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

keys = st.text(min_size=1, max_size=20)
values = st.one_of(st.text(max_size=60), st.integers(), st.none(), st.booleans())


def written(value) -> str:
    """What a value reads as after a round trip: its text, escaped ("|" included); an
    absent value (None) is written "-"."""
    if value is None:
        return "-"
    if isinstance(value, bool | int):
        return str(value)
    return escape(value).replace("|", "\\x7c")


def make_record(message: str, fields: dict, exc_text: str | None = None) -> logging.LogRecord:
    record = logging.LogRecord("billing.api", logging.INFO, "/app/x.py", 7, message, None, None)
    for key, value in fields.items():
        record.__dict__[f"f_{key}"] = value
    record.exc_text = exc_text
    return record


class TestRoundTrip:
    @given(message=st.text(max_size=80), fields=st.dictionaries(keys, values, max_size=5))
    @hsettings(max_examples=300, deadline=None)
    def test_any_record_parses_back_to_its_fields(self, message, fields):
        line = ApiFormatter().format(make_record(message, fields))
        assert "\n" not in line
        parsed = parse_line(line, "requests")
        assert parsed is not None
        assert parsed.message == escape(message).replace("|", "\\x7c")
        rendered = [render_key(f"f_{key}") for key in fields]
        if len(set(rendered)) < len(rendered):
            return  # two names that render alike: the last one wins, as in any dict
        for key, value in fields.items():
            assert parsed.fields[render_key(f"f_{key}")] == written(value)
        assert parsed.traceback == ""

    @given(message=st.text(max_size=80), fields=st.dictionaries(keys, values, max_size=5))
    @hsettings(max_examples=300, deadline=None)
    def test_any_record_written_as_json_parses_back_to_its_fields(self, message, fields):
        line = JsonFormatter().format(make_record(message, fields))
        assert "\n" not in line
        parsed = parse_line(line, "requests")
        assert parsed is not None and parsed.is_json
        assert (parsed.level, parsed.logger) == ("INFO", "billing.api")
        assert parsed.message == escape(message)
        rendered = [render_key(f"f_{key}") for key in fields]
        if len(set(rendered)) < len(rendered):
            return  # two names that render alike: the last one wins, as in any dict
        for key, value in fields.items():
            if value is None:  # an absent value is left out of a JSON line
                assert render_key(f"f_{key}") not in parsed.fields
                continue
            expected = escape(value) if isinstance(value, str) else value
            assert parsed.fields[render_key(f"f_{key}")] == expected
        assert parsed.traceback == ""

    @given(text=st.text(max_size=200))
    @hsettings(max_examples=300, deadline=None)
    def test_a_json_traceback_reads_back_with_only_its_own_line_breaks(self, text):
        line = JsonFormatter().format(make_record("failed", {}, exc_text=text))
        parsed = parse_line(line, "errors")
        assert parsed is not None
        back = unescape_traceback(parsed.traceback)
        assert back == "".join(c if c == "\n" else escape(c) for c in text)

    @given(text=st.text(max_size=200))
    @hsettings(max_examples=300, deadline=None)
    def test_a_traceback_reads_back_with_only_its_own_line_breaks(self, text):
        line = DetailedFormatter().format(make_record("failed", {}, exc_text=text))
        parsed = parse_line(line, "errors")
        assert parsed is not None
        back = unescape_traceback(parsed.traceback)
        # Line breaks and "|" come back; every other control character stays escaped.
        assert back == "".join(c if c in "\n|" else escape(c) for c in text)
        assert back.count("\n") == text.count("\n")

    def test_escape_traceback_round_trip_example(self):
        text = 'Traceback\n  File "a\\nb", line 1 |\nValueError: x\\ny \x1b[31m'
        assert unescape_traceback(escape_traceback(text)) == text.replace("\x1b", "\\x1b")

    @given(key=st.text(max_size=100))
    def test_keys_are_tokens(self, key):
        rendered = render_key(key)
        assert rendered and len(rendered) <= 65
        assert all(c.isalnum() or c in "_.-" for c in rendered)
        assert rendered[0].isalpha() or rendered[0] == "_"


HAND_WRITTEN_ECS = (
    '{"@timestamp": "2026-11-27T10:00:00.123Z", "log.level": "error", "message": "API Request '
    'failed - Status: 502", "ecs.version": "1.6.0", "log": {"logger": "billing.api"}, "http": '
    '{"request": {"id": "ecs-1", "method": "POST"}, "response": {"status_code": 502}}, "trace": '
    '{"id": "4bf92f3577b34da6a3ce929d0e0e4736"}, "span": {"id": "00f067aa0ba902b7"}, "user": '
    '{"id": "7", "name": "eve"}, "client": {"ip": "10.0.0.9"}, "url": {"path": "/api/v1/x/"}, '
    '"labels": {"route": "api/v1/x/", "view": "XView"}, "event": {"duration": 123000000}, '
    '"error": {"stack_trace": "Traceback (most recent call last):\\n  File \\"x.py\\"\\nOSError: '
    'down", "type": "OSError"}, "process": {"pid": 42}}'
)


class TestThreeLayouts:
    def test_a_text_line_a_json_line_and_an_ecs_line_read_alike(self):
        text = (
            "2026-11-27 10:00:00,123 ERROR [billing.api] API Request failed - Status: 502 | "
            "request_id=ecs-1 user_id=7 username=eve ip=10.0.0.9 method=POST path=/api/v1/x/ "
            "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7 status=502 "
            'duration=0.123 route=api/v1/x/ view=XView | Traceback (most recent call last):\\n  File "x.py"\\nOSError: down'
        )
        json_line = (
            '{"timestamp": "2026-11-27T10:00:00.123+00:00", "level": "ERROR", "logger": '
            '"billing.api", "message": "API Request failed - Status: 502", "request_id": "ecs-1", '
            '"user_id": "7", "username": "eve", "ip": "10.0.0.9", "method": "POST", "path": '
            '"/api/v1/x/", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": '
            '"00f067aa0ba902b7", "status": 502, "duration": 0.123, "route": "api/v1/x/", '
            '"view": "XView", "exc_info": "Traceback (most recent call last):\\\\n  File \\"x.py\\"\\\\nOSError: down"}'
        )
        parsed = [parse_line(line, "requests") for line in (text, json_line, HAND_WRITTEN_ECS)]
        for record in parsed:
            assert record.time.isoformat() == "2026-11-27T10:00:00.123000+00:00"
            assert (record.level, record.logger) == ("ERROR", "billing.api")
            assert record.message == "API Request failed - Status: 502"
            assert record.request_id == "ecs-1"
            shown = {k: str(record.fields[k]) for k in ("user_id", "username", "ip", "method")}
            assert shown == {"user_id": "7", "username": "eve", "ip": "10.0.0.9", "method": "POST"}
            assert record.fields["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
            assert record.fields["span_id"] == "00f067aa0ba902b7"
            assert (str(record.fields["status"]), float(record.fields["duration"])) == (
                "502",
                0.123,
            )
            assert (record.fields["route"], record.fields["view"]) == ("api/v1/x/", "XView")
            assert unescape_traceback(record.traceback).splitlines()[-1] == "OSError: down"
        ecs = parsed[2]
        assert ecs.is_json and ecs.fields["process.pid"] == 42
        assert "ecs.version" not in ecs.fields and "log.level" not in ecs.fields

    def test_ecs_lines_need_a_time_and_a_level(self):
        assert parse_line('{"@timestamp": "2026-11-27T10:00:00Z", "message": "x"}') is None
        assert parse_line('{"@timestamp": "yesterday", "log.level": "info"}') is None
        assert parse_line('{"@timestamp": "2026-11-27T10:00:00Z", "log.level": "info"}') is not None


try:
    import ecs_logging  # the library the ECS formatter is built on
except ImportError:  # pragma: no cover - until it is a dependency
    ecs_logging = None
label_names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True).filter(
    lambda name: name not in {"request_id", "duration", "status", "route"}
)


@pytest.mark.skipif(ecs_logging is None, reason="needs ecs-logging (pip install ecs-logging)")
class TestEcsRoundTrip:
    """ecs-logging's own formatter writes the lines, from records whose extras carry ECS names."""

    @staticmethod
    def ecs_record(message: str, extras: dict, exc_info=None) -> logging.LogRecord:
        record = logging.LogRecord(
            "billing.api", logging.WARNING, "/app/x.py", 7, message, None, exc_info
        )
        record.__dict__.update(extras)
        return record

    @given(
        message=st.text(max_size=80),
        labels=st.dictionaries(label_names, st.text(max_size=40), max_size=4),
        status=st.integers(100, 599),
        nanoseconds=st.integers(0, 10**12),
    )
    @hsettings(max_examples=200, deadline=None)
    def test_any_record_written_by_ecs_logging_parses_back(
        self, message, labels, status, nanoseconds
    ):
        extras = {
            "http.request.id": "r-1",
            "http.response.status_code": status,
            "event.duration": nanoseconds,
            "labels.route": "api/v1/plans/<int:pk>/",
            **{f"labels.{name}": value for name, value in labels.items()},
        }
        line = ecs_logging.StdlibFormatter().format(self.ecs_record(message, extras))
        assert "\n" not in line
        parsed = parse_line(line, "requests")
        assert parsed is not None
        assert (parsed.level, parsed.logger, parsed.message) == ("WARNING", "billing.api", message)
        assert parsed.request_id == "r-1" and parsed.fields["status"] == status
        assert parsed.fields["duration"] == pytest.approx(nanoseconds / 1e9)
        assert parsed.fields["route"] == "api/v1/plans/<int:pk>/"
        for name, value in labels.items():
            assert parsed.fields[name] == value

    def test_an_ecs_traceback_reads_back_with_its_line_breaks(self):
        try:
            raise OSError("gateway down")
        except OSError:
            record = self.ecs_record("failed", {"http.request.id": "r-2"}, sys.exc_info())
        line = ecs_logging.StdlibFormatter().format(record)
        parsed = parse_line(line, "errors")
        back = unescape_traceback(parsed.traceback)
        assert back.count("\n") >= 1 and "test_an_ecs_traceback_reads_back" in back
        assert parsed.fields["error.type"] == "OSError"


FORGED_UA = (
    'agent " | request_id=VICTIM-1 user_id=1 | x\n'
    "[requests] 2026-01-01 00:00:00,000 INFO [billing.api] API Request completed | "
    "request_id=VICTIM-1"
)


def run_logtrace(*args) -> str:
    from observability import flush_logs

    assert flush_logs(DEADLINE)
    out = io.StringIO()
    with contextlib.suppress(SystemExit):
        call_command("logtrace", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_hostile_user_agent_cannot_end_the_context_nor_inject_a_record(logs):
    response = Client().get("/t/plain/", HTTP_USER_AGENT=FORGED_UA)
    rid = response["X-Request-ID"]
    started = next(line for line in logs.for_request(rid) if "started" in line)
    parsed = parse_line(started, "requests")
    assert parsed.request_id == rid
    assert parsed.traceback == ""
    assert parsed.fields["user_agent"] == escape(FORGED_UA).replace("|", "\\x7c")
    output = run_logtrace(rid, "--dir", str(logs.path))
    printed = [line for line in output.splitlines() if line.startswith("[")]
    assert len(printed) == 3  # started, the view's record, completed
    assert "VICTIM-1" not in "".join(line for line in printed if "user_agent" not in line)
    assert run_logtrace("VICTIM-1", "--dir", str(logs.path)) == ""


def test_a_hostile_exception_message_stays_inside_its_traceback(logs):
    from observability import request_context

    with request_context(request_id="tb-1"):
        try:
            raise ValueError("bad\n[requests] 2026-01-01 00:00:00,000 INFO forged \x1b[2J")
        except ValueError:
            logging.getLogger("billing").exception("failed")
    output = run_logtrace("tb-1", "--dir", str(logs.path))
    lines = output.splitlines()
    assert not any(line.startswith("[requests]") for line in lines)
    assert any(line.lstrip().startswith("| [requests] 2026-01-01") for line in lines)
    assert "\x1b" not in output and "\\x1b[2J" in output


def test_an_id_shared_by_several_requests_is_flagged_and_kept_apart(logs):
    client = Client(raise_request_exception=False)
    client.get("/t/plain/", HTTP_X_REQUEST_ID="shared-id-1")
    client.get("/t/boom/", HTTP_X_REQUEST_ID="shared-id-1")
    output = run_logtrace("shared-id-1", "--dir", str(logs.path))
    assert "shared by 2 requests" in output.splitlines()[0]
    first, second = output.split("--- request 2 of 2")
    assert "plain view ran" in first and "kaboom" not in first
    assert "about to fail" in second and "plain view ran" not in second
    assert "status=200" in first and "status=500" in second


def test_one_request_is_not_flagged(logs):
    client = Client()
    response = client.get("/t/plain/")
    output = run_logtrace(response["X-Request-ID"], "--dir", str(logs.path))
    assert "shared by" not in output


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX only")
def test_json_trace_output_lists_each_request(logs):
    import json

    client = Client()
    client.get("/t/plain/", HTTP_X_REQUEST_ID="shared-id-2")
    client.get("/t/plain/", HTTP_X_REQUEST_ID="shared-id-2")
    data = json.loads(run_logtrace("shared-id-2", "--dir", str(logs.path), "--json"))
    assert data["shared_by"] == 2
    # started, view, completed; the second also has its request_id_reused security event
    assert [len(r["records"]) for r in data["requests"]] == [3, 4]
    assert any("request_id_reused" in r["message"] for r in data["requests"][1]["records"])
