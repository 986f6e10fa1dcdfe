"""`logtrace <id> --json` and `--level`: every record of the request in every file counted,
numbers as numbers whatever format the files are in, and the header whole at any level."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.test import Client

from tests.conftest import FILES, configure_logs, token_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]


def run(capsys, *args) -> str:
    call_command("logtrace", *args)
    return capsys.readouterr().out


@pytest.fixture(params=["text", "json"])
def slow_declined(request, tmp_path, settings, user):
    """A declined payment by john_doe, slow (threshold 0): lines in the requests, general and
    security files at INFO and WARNING; and a failure with its traceback (errors file)."""
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "SLOW_REQUEST_THRESHOLD": 0.0}
    logs = configure_logs(tmp_path, log_format=request.param)
    client = Client(raise_request_exception=False)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user)}"}
    declined = client.post(
        "/api/v1/payments/",
        {"amount": "5.00", "currency": "USD", "payment_method": "pm_card_declined"},
        content_type="application/json",
        **auth,
    )["X-Request-ID"]
    forbidden = client.get("/api/v1/admin/stats/", **auth)["X-Request-ID"]
    failed = client.get("/t/boom/")["X-Request-ID"]
    logs.lines("requests")
    return logs, {"declined": declined, "forbidden": forbidden, "failed": failed}


def lines_holding(logs, rid: str) -> dict[str, int]:
    counts = {}
    for tag in FILES:
        held = sum(1 for line in logs.lines(tag) if rid in line)
        if held:
            counts[tag] = held
    return counts


def test_json_counts_every_record_in_every_file_with_numbers_as_numbers(
    slow_declined, capsys, user
):
    logs, ids = slow_declined
    for name, rid in ids.items():
        data = json.loads(run(capsys, rid, "--dir", str(logs.path), "--json"))
        expected = lines_holding(logs, rid)
        assert data["summary"]["records"] == expected, name
        # A record written to two files is one, naming the other (also_in).
        written = [1 + len(record.get("also_in", [])) for record in data["records"]]
        assert sum(written) == sum(expected.values()), name
        summary = data["summary"]
        assert isinstance(summary["status"], int) and isinstance(summary["duration"], float)
        for record in data["records"]:
            fields = record["fields"]
            for key in ("status", "duration", "response_size", "process", "user_id"):
                if fields.get(key) is not None:
                    assert isinstance(fields[key], int | float), (key, fields[key])
    declined = json.loads(run(capsys, ids["declined"], "--dir", str(logs.path), "--json"))
    assert declined["summary"]["status"] == 402 and declined["summary"]["user_id"] == user.id
    failed = json.loads(run(capsys, ids["failed"], "--dir", str(logs.path), "--json"))
    assert failed["summary"]["status"] == 500
    assert failed["summary"]["user_id"] is None and failed["summary"]["username"] is None
    assert set(failed["summary"]["records"]) >= {"requests", "general", "errors"}


def test_level_warning_keeps_the_whole_header(slow_declined, capsys, user):
    logs, ids = slow_declined
    out = run(capsys, ids["declined"], "--dir", str(logs.path), "--level", "WARNING")
    header = out.split("\n[", 1)[0]
    assert "POST /api/v1/payments/  status=402 duration=" in header
    assert "user=john_doe (ID 1)" in header.replace(f"(ID {user.id})", "(ID 1)")
    shown = [line for line in out.splitlines() if line.startswith("[")]
    assert shown and all(" INFO " not in line for line in shown)
    data = json.loads(
        run(capsys, ids["declined"], "--dir", str(logs.path), "--json", "--level", "WARNING")
    )
    assert data["summary"]["status"] == 402 and data["summary"]["username"] == "john_doe"
    assert data["requests"][0]["summary"]["status"] == 402
    assert all(r["level"] in ("WARNING", "ERROR", "CRITICAL") for r in data["records"])


def test_a_record_written_to_two_files_is_shown_once_naming_both(slow_declined, capsys):
    """The failed request's terminal line is in the requests and the errors file, Django's
    error in the general and the errors file: each is one record, naming the other file."""
    logs, ids = slow_declined
    data = json.loads(run(capsys, ids["failed"], "--dir", str(logs.path), "--json"))
    failed = [r for r in data["records"] if r["message"].startswith("API Request failed")]
    assert [(r["file"], r.get("also_in")) for r in failed] == [("requests", ["errors"])]
    errors = [r for r in data["records"] if "errors" in (r["file"], *r.get("also_in", []))]
    assert len({r["fields"]["record_id"] for r in errors}) == len(errors) == 2
    assert data["summary"]["records"]["errors"] == 2
    text = run(capsys, ids["failed"], "--dir", str(logs.path))
    assert sum("API Request failed" in line for line in text.splitlines()) == 1
    assert "[requests+errors] " in text
