"""The text line grammar: what the formatters write, logtrace reads back exactly; no value forges."""

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

from observability.escaping import escape, escape_traceback, unescape_traceback
from observability.formatters import ApiFormatter, DetailedFormatter
from observability.logtrace import parse_line
from observability.textline import render_key

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

keys = st.text(min_size=1, max_size=20)
values = st.one_of(st.text(max_size=60), st.integers(), st.none(), st.booleans())


def written(value) -> str:
    """What a value reads as after a round trip: its text, escaped ("|" included)."""
    if value is None or isinstance(value, bool | int):
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


FORGED_UA = (
    'agent " | request_id=VICTIM-1 user_id=1 | x\n'
    "[requests] 2026-01-01 00:00:00,000 INFO [billing.api] API Request completed | "
    "request_id=VICTIM-1"
)


def run_logtrace(*args) -> str:
    from observability import flush_logs

    assert flush_logs(10)
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
