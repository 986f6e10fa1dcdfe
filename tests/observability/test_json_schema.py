"""LOG_FORMAT=json: every line the product writes holds to the schema shipped in the repo
(observability/schema/line.schema.json): one type per field everywhere, absent values left
out, numbers as numbers, details in their own object, tracebacks as plain text."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import observability
from tests.conftest import FILES, configure_logs
from tests.observability.scenarios import write_every_kind_of_line

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

SCHEMA_PATH = Path(observability.__file__).parent / "schema" / "line.schema.json"
#: Fields the scenarios add with `extra` themselves (a project's own: additionalProperties).
SCENARIO_FIELDS = {"order_id", "ratio", "flag", "invoice", "lines"}


@pytest.fixture(scope="module")
def schema() -> dict:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return schema


@pytest.fixture
def json_lines(tmp_path, settings, user, staff) -> list[dict]:
    logs = configure_logs(tmp_path, log_format="json", debug=True)
    write_every_kind_of_line(settings, user, staff)
    lines = [line for name in FILES for line in logs.lines(name)]
    assert len(lines) > 100
    return [json.loads(line) for line in lines]


def _declared(schema: dict, key: str, where: dict) -> bool:
    import re

    return key in where.get("properties", {}) or any(
        re.search(pattern, key) for pattern in where.get("patternProperties", {})
    )


def test_every_line_of_every_kind_is_valid(json_lines, schema):
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for line in json_lines:
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(line)]
        assert not errors, (errors, line)
    # Every field the product writes is declared, with its one type.
    details_schema = schema["$defs"]["details"]
    for line in json_lines:
        undeclared = {k for k in line if not _declared(schema, k, schema)} - SCENARIO_FIELDS
        assert not undeclared, (undeclared, line)
        undeclared = {
            k for k in line.get("details", {}) if not _declared(schema, k, details_schema)
        }
        assert not undeclared, (undeclared, line)
    # ... and the scenarios wrote every kind of line.
    messages = [line["message"] for line in json_lines]
    for kind in (
        "API Request started",
        "API Request completed",
        "API Request failed",
        "Slow API request detected",
        "Billing Event: payment_created",
        "Billing Event: payment_failed",
        "Billing Event: refund_refused",
        "Security Event: login_failed",
        "Security Event: login_succeeded",
        "Security Event: authentication_failed",
        "Security Event: permission_denied",
        "Security Event: traceparent_rejected",
        "Security Event: request_trace_viewed",
        "Security Event: request_log_searched",
        "Security Event: admin_login_failed",
        "Performance Metric: payment_processing",
        "Performance Metric: report_generation",
        "Billing Event: payment_reconciled",
        "in a background job",
        "outside any request",
        "Task scenario.deliver published",
        "Task scenario.deliver started",
        "Task scenario.deliver succeeded",
        "Task scenario.fail failed",
        "Task scenario.retry retried",
    ):
        assert any(message.startswith(kind) for message in messages), kind
    assert any("repeated" in line for line in json_lines)  # flood summaries
    assert any("exc_info" in line for line in json_lines)
    assert any(line["level"] == "DEBUG" for line in json_lines)


def test_one_type_per_field_and_no_placeholders(json_lines):
    types: dict[str, set[str]] = defaultdict(set)
    for line in json_lines:
        for key, value in line.items():
            types[key].add(type(value).__name__)
            assert value != "-" or key == "username", (key, line)
        for key, value in line.get("details", {}).items():
            types[f"details.{key}"].add(type(value).__name__)
            assert value not in ("-", None), (key, line)
    mixed = {key: kinds for key, kinds in types.items() if len(kinds - {"float", "int"}) > 1}
    assert not mixed
    completed = [line for line in json_lines if line["message"].startswith("API Request completed")]
    assert all(isinstance(line["status"], int) for line in completed)
    assert all(isinstance(line["duration"], float) for line in completed)
    missing = [
        line for line in completed if line["status"] == 404 and "/no/such/page/" in line["path"]
    ]
    assert missing and "route" not in missing[0] and "view" not in missing[0]
    outside = next(line for line in json_lines if line["message"] == "outside any request")
    assert not {"request_id", "user_id", "ip", "span_id", "trace_id"} & set(outside)
    login = next(line for line in json_lines if "login_succeeded" in line["message"])
    assert isinstance(login["user_id"], int)


def test_a_traceback_is_plain_text_with_real_line_breaks(json_lines):
    failure = next(line for line in json_lines if line["message"] == "a failure with its traceback")
    text = failure["exc_info"]
    assert text.startswith("Traceback (most recent call last):\n  File ")
    # Escaped once, by JSON: the source line reads as it is in the file.
    assert 'raise RuntimeError("the ledger said no\\n\\x1b[31mred\\u202e")\n' in text
    # A control or bidi character the exception held is visible, never raw.
    assert text.endswith("RuntimeError: the ledger said no\n\\x1b[31mred\\u202e\n")
    assert "\x1b" not in text and "\u202e" not in text


# A request as the previous version wrote it in JSON: "-" placeholders, a route of "-",
# the traceback escaped twice, an event's details beside the context.
OLD_VERSION = [
    '{"timestamp":"2026-11-20T08:00:00.100+00:00","level":"INFO","logger":"billing.api","message":"API Request started - User: anonymous (ID: -), IP: 10.0.0.5, Method: GET, Path: /old/","request_id":"old-1","user_id":"-","username":"-","ip":"10.0.0.5","method":"GET","path":"/old/","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","process":7,"thread":"MainThread"}',
    '{"timestamp":"2026-11-20T08:00:00.150+00:00","level":"INFO","logger":"billing.performance","message":"Performance Metric: payment_processing - Value: 0.011 seconds","request_id":"old-1","user_id":"-","username":"-","ip":"10.0.0.5","method":"GET","path":"/old/","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","metric_name":"payment_processing","value":0.011,"unit":"seconds","status":"succeeded","process":7,"thread":"MainThread"}',
    '{"timestamp":"2026-11-20T08:00:00.200+00:00","level":"ERROR","logger":"billing.api","message":"API Request failed - Status: 500, Duration: 0.100 seconds, Error: ValueError","request_id":"old-1","user_id":"-","username":"-","ip":"10.0.0.5","method":"GET","path":"/old/","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","status":500,"duration":0.1,"response_size":141,"route":"-","view":"-","process":7,"thread":"MainThread","exc_info":"Traceback (most recent call last):\\\\n  File \\"/srv/app\\\\\\\\views.py\\", line 51, in boom_view\\\\n    raise ValueError(\\"kaboom\\")\\\\nValueError: kaboom"}',
]


def test_lines_of_the_previous_version_stay_readable(tmp_path, capsys, settings, staff):
    """Rotated files outlive an upgrade: logtrace and the viewer read old and new lines."""
    from django.core.management import call_command
    from django.test import Client

    logs = configure_logs(tmp_path, log_format="json")
    (tmp_path / "billing_api_requests.log.1").write_text(
        "\n".join(line for line in OLD_VERSION if "billing.api" in line) + "\n"
    )
    (tmp_path / "billing_api.log.1").write_text(OLD_VERSION[1] + "\n")
    new = Client(raise_request_exception=False).get("/t/boom/")["X-Request-ID"]
    logs.lines("requests")
    stories = {}
    for rid in ("old-1", new):
        call_command("logtrace", rid, "--dir", str(tmp_path))
        stories[rid] = capsys.readouterr().out
    old, fresh = stories["old-1"], stories[new]
    assert "status=500 duration=0.1s" in old
    assert "           | Traceback (most recent call last):\n" in old
    assert '           |   File "/srv/app\\views.py", line 51, in boom_view\n' in old
    assert "           | ValueError: kaboom\n" in old
    assert "           | Traceback (most recent call last):\n" in fresh
    assert "           | ValueError: kaboom\n" in fresh
    call_command("logtrace", "old-1", "--dir", str(tmp_path), "--json")
    data = json.loads(capsys.readouterr().out)
    assert len(data["records"]) == 3
    # The trace viewer draws both stories, tracebacks unfolded.
    settings.LOG_BASE_DIR = str(tmp_path)
    client = Client()
    client.force_login(staff)
    for rid in ("old-1", new):
        page = client.get(f"/ops/requests/{rid}/")
        assert page.status_code == 200
        assert "ValueError: kaboom" in page.content.decode()
        assert "\\nValueError" not in page.content.decode()
