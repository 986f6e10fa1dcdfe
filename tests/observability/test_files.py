"""The five files, the formatters, the helpers, test_logging, and the seed's grep recipes."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from freezegun import freeze_time

from billing.logging_utils import (
    StructuredLogger,
    api_logger,
    billing_logger,
    events_logger,
    log_billing_event,
    log_performance_metric,
    log_security_event,
    performance_logger,
    security_logger,
)
from observability import build_logging, request_context
from observability.formatters import (
    ApiFormatter,
    DetailedFormatter,
    JsonFormatter,
    SimpleFormatter,
    VerboseFormatter,
)
from observability.output.records import RECORD_ID_ATTR
from tests.conftest import NOT_SLOW, configure_logs, parse_tokens, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def john(db):
    return get_user_model().objects.create_user("john_doe", password="pw-123456", id=123)


def walkthrough(john):
    """A payment, a decline, a forbidden admin call and a bad token, from 192.168.1.100."""
    client = Client(REMOTE_ADDR="192.168.1.100")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(john)}"}
    body = {"amount": "99.99", "currency": "USD", "payment_method": "pm_card_visa"}
    ok = client.post("/api/v1/payments/", body, content_type="application/json", **auth)
    client.post(
        "/api/v1/payments/",
        {**body, "payment_method": "pm_card_declined"},
        content_type="application/json",
        **auth,
    )
    client.get("/api/v1/admin/stats/", **auth)
    client.get("/api/v1/payments/", HTTP_AUTHORIZATION="Bearer nope")
    return ok


class TestFileRouting:
    def test_each_file_gets_its_records_and_not_others(self, logs, john):
        walkthrough(john)
        requests = logs.lines("requests")
        assert requests and all("[billing.api] " in line for line in requests)
        general = logs.text("general")
        assert "[billing.events] Billing Event: payment_created - User: 123" in general
        assert "[billing.performance] Performance Metric: payment_processing" in general
        assert "API Request" not in general
        security = logs.lines("security")
        assert any("unauthorized_admin_access" in line for line in security)
        assert any("[common.jwt_auth] JWT authentication failed" in line for line in security)
        assert not any("API Request" in line for line in security)
        assert not any(" INFO " in line or " WARNING " in line for line in logs.lines("errors"))
        assert not logs.file("debug").exists()

    def test_errors_file_gets_error_from_every_logger_with_traceback(self, logs):
        for name in (
            "billing",
            "billing.api",
            "billing.security",
            "django",
            "rest_framework",
            "some.third.party",
        ):
            try:
                raise KeyError(name)
            except KeyError:
                logging.getLogger(name).exception("failure in %s", name)
        errors = logs.lines("errors")
        assert len(errors) == 6
        assert all("Traceback (most recent call last):" in line for line in errors)
        assert all(line.count("\n") == 0 for line in errors)

    def test_sql_reaches_no_file_unless_debug(self, logs, tmp_path, john):
        with_debug = configure_logs(tmp_path / "debug", debug=True)
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection):  # makes Django log SQL, as DEBUG=True does
            Client().get("/api/v1/payments/", HTTP_AUTHORIZATION=f"Bearer {token_for(john)}")
        assert "[django.db.backends]" in with_debug.text("debug")
        assert "[django.db.backends]" not in with_debug.text("general")
        quiet = configure_logs(tmp_path / "quiet", debug=False)
        with CaptureQueriesContext(connection):
            Client().get("/api/v1/payments/", HTTP_AUTHORIZATION=f"Bearer {token_for(john)}")
        assert "[django.db.backends]" not in quiet.everything()

    def test_debug_file_only_with_debug(self, tmp_path):
        assert "debug_file" not in build_logging(base_dir=tmp_path, debug=False)["handlers"]
        config = build_logging(base_dir=tmp_path, debug=True)
        assert config["handlers"]["debug_file"]["filename"].endswith("/app_debug.log")  # neutral
        config = build_logging(base_dir=tmp_path, debug=True, observability=NOT_SLOW)
        assert config["handlers"]["debug_file"]["filename"].endswith("billing_api_debug.log")

    def test_seed_sizes_and_root_entry(self, tmp_path):
        config = build_logging(base_dir=tmp_path, observability=NOT_SLOW)  # the project's names
        sizes = {
            h["filename"].rsplit("/", 1)[1]: (h["maxBytes"], h["backupCount"])
            for h in config["handlers"].values()
            if "filename" in h
        }
        mb = 1024 * 1024
        assert sizes == {
            "billing_api.log": (10 * mb, 5),
            "billing_api_errors.log": (5 * mb, 10),
            "billing_api_requests.log": (10 * mb, 5),
            "billing_api_security.log": (5 * mb, 10),
        }
        config["root"]["level"] = "DEBUG"  # the seed's debugging tip works on this dict
        for name in (
            "django",
            "django.request",
            "django.security",
            "django.db.backends",
            "billing",
            "billing.views",
            "billing.models",
            "billing.api",
            "billing.security",
            "billing.performance",
            "billing.events",
            "common.jwt_auth",
            "rest_framework",
        ):
            assert name in config["loggers"]

    def test_missing_log_dir_is_created(self, tmp_path):
        target = tmp_path / "not" / "yet" / "there"
        logs = configure_logs(target)
        logging.getLogger("billing").info("hello")
        assert "hello" in logs.text("general")

    def test_json_format_switch(self, tmp_path, john):
        logs = configure_logs(tmp_path, log_format="json")
        response = walkthrough(john)
        rid = response["X-Request-ID"]
        for name in ("general", "requests", "security"):
            for line in logs.lines(name):
                record = json.loads(line)
                assert {
                    "timestamp",
                    "level",
                    "logger",
                    "message",
                    "request_id",
                    "ip",
                    "method",
                    "path",
                } <= set(record)
                # An absent value is left out, never a placeholder: an anonymous line has
                # no user_id, an authenticated one a number.
                assert record.get("user_id", 0) != "-"
                assert record["timestamp"].endswith("+00:00")
        completed = [
            json.loads(line)
            for line in logs.lines("requests")
            if rid in line and "completed" in line
        ]
        assert completed[0]["status"] == 201
        assert completed[0]["user_id"] == 123
        event = next(
            json.loads(line) for line in logs.lines("general") if "payment_created" in line
        )
        assert event["event_type"] == "payment_created"
        assert event["details"]["currency"] == "USD"  # details: a namespace of their own


FIXED_CONTEXT = {
    "request_id": "rid-1",
    "user_id": 123,
    "username": "john_doe",
    "ip": "192.168.1.100",
    "method": "POST",
    "path": "/api/v1/payments/",
}


def fixed_record(**extra) -> logging.LogRecord:
    with freeze_time("2024-01-20 10:30:00.125"):
        record = logging.LogRecord(
            "billing.api",
            logging.INFO,
            "/app/x.py",
            7,
            "API Request completed - Status: %s",
            (201,),
            None,
            func="view",
        )
    record.process, record.threadName, record.module = 42, "MainThread", "x"
    record.__dict__.update(FIXED_CONTEXT, **extra)
    record.__dict__[RECORD_ID_ATTR] = "r1x9k2a"  # its identity (random in a real process)
    return record


class TestFormatters:
    tail = (
        "request_id=rid-1 user_id=123 username=john_doe ip=192.168.1.100 method=POST "
        "path=/api/v1/payments/ trace_id=- span_id=- status=201"
    )

    def test_api(self):
        assert ApiFormatter().format(fixed_record(status=201)) == (
            "2024-01-20 10:30:00,125 INFO [billing.api] API Request completed - Status: 201 | "
            + self.tail
            + " record_id=r1x9k2a"
        )

    def test_simple(self):
        assert SimpleFormatter().format(fixed_record(status=201)) == (
            "INFO [billing.api] API Request completed - Status: 201 | "
            + self.tail
            + " record_id=r1x9k2a"
        )

    def test_verbose(self):
        assert VerboseFormatter().format(fixed_record(status=201)) == (
            "2024-01-20 10:30:00,125 INFO [billing.api] API Request completed - Status: 201 | "
            + self.tail
            + " module=x process=42 threadName=MainThread record_id=r1x9k2a"
        )

    def test_detailed(self):
        assert DetailedFormatter().format(fixed_record(status=201)) == (
            "2024-01-20 10:30:00,125 INFO [billing.api] API Request completed - Status: 201 | "
            + self.tail
            + " pathname=/app/x.py lineno=7 funcName=view process=42 threadName=MainThread"
            + " record_id=r1x9k2a"
        )

    def test_json(self):
        line = JsonFormatter().format(fixed_record(status=201, details={"a": [1, "b"]}))
        assert json.loads(line) == {
            "timestamp": "2024-01-20T10:30:00.125+00:00",
            "level": "INFO",
            "logger": "billing.api",
            "message": "API Request completed - Status: 201",
            **FIXED_CONTEXT,  # no trace_id, span_id: absent values are left out
            "status": 201,
            "details": {"a": [1, "b"]},
            "process": 42,
            "thread": "MainThread",
            "record_id": "r1x9k2a",
        }

    def test_values_with_spaces_are_quoted_and_missing_context_is_dash(self):
        record = logging.LogRecord("x", logging.INFO, "p", 1, "m", (), None)
        record.reason = 'has "quotes" and spaces'
        line = ApiFormatter().format(record)
        assert "request_id=- user_id=- username=- ip=- method=- path=-" in line
        assert parse_tokens(line)["reason"] == 'has "quotes" and spaces'


class TestHelpers:
    def test_seed_loggers_are_the_seed_names(self):
        assert [
            lg.name
            for lg in (
                billing_logger,
                api_logger,
                security_logger,
                performance_logger,
                events_logger,
            )
        ] == ["billing", "billing.api", "billing.security", "billing.performance", "billing.events"]

    def test_billing_event_inside_request_context(self, logs):
        with request_context(request_id="r-1", user_id=5, username="amy"):
            log_billing_event(
                event_type="payment_created",
                user_id=123,
                details={"payment_id": 456, "amount": 99.99, "currency": "USD"},
            )
        line = logs.lines("general")[0]
        assert (
            "INFO [billing.events] Billing Event: payment_created - User: 123, Details: "
            "{'payment_id': 456, 'amount': 99.99, 'currency': 'USD'} | "
        ) in line
        tokens = parse_tokens(line)
        assert tokens["request_id"] == "r-1" and tokens["user_id"] == "123"
        assert (tokens["payment_id"], tokens["amount"], tokens["currency"]) == (
            "456",
            "99.99",
            "USD",
        )
        assert tokens["event_type"] == "payment_created"

    def test_helpers_outside_a_request(self, logs):
        log_billing_event(event_type="subscription_created", details={"plan_id": 1})
        log_performance_metric(
            metric_name="report_generation", value=0.095, details={"report_type": "revenue"}
        )
        log_security_event(event_type="brute_force", severity="critical", details={"n": 9})
        general = logs.lines("general")
        assert "Billing Event: subscription_created - User: -" in general[0]
        assert "Performance Metric: report_generation - Value: 0.095 seconds" in general[1]
        assert "request_id=- " in general[1]
        security = logs.lines("security")
        assert (
            " CRITICAL [billing.security] Security Event: brute_force - Severity: critical"
            in security[0]
        )
        assert "severity=critical" in security[0]
        assert "brute_force" in logs.text("errors")  # critical is an error too

    @pytest.mark.parametrize(
        ("severity", "level"),
        [("info", "INFO"), ("warning", "WARNING"), ("error", "ERROR"), ("critical", "CRITICAL")],
    )
    def test_security_severity_sets_level(self, logs, severity, level):
        log_security_event(event_type="x", severity=severity)
        assert f" {level} [billing.security] " in logs.lines("security")[0]

    def test_helpers_take_a_request_outside_the_middleware(self, logs, rf):
        request = rf.post("/api/v1/payments/", REMOTE_ADDR="10.1.2.3")
        log_security_event(
            request=request, event_type="probe", details={"attempted_endpoint": "/x"}
        )
        tokens = parse_tokens(logs.lines("security")[0])
        assert (tokens["ip"], tokens["method"], tokens["path"]) == (
            "10.1.2.3",
            "POST",
            "/api/v1/payments/",
        )

    def test_structured_logger(self, logs):
        logger = StructuredLogger("billing.payments")
        logger.info(
            "Processing refund",
            {"payment_id": 7, "reason": "customer_request", "message": "collides with LogRecord"},
        )
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError as exc:
            logger.error("Refund failed", {"payment_id": 7, "error": str(exc)}, exc_info=True)  # noqa: G201
        general = logs.lines("general")
        assert "Processing refund | " in general[0]
        assert "payment_id=7 reason=customer_request" in general[0]
        assert 'field_message="collides with LogRecord"' in general[0]
        assert "ZeroDivisionError" in logs.text("errors")
        for method in ("debug", "warning", "critical"):
            getattr(logger, method)(f"{method} works", {"k": 1})
        assert "critical works" in logs.text("errors")


class TestTestLoggingCommand:
    @pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
    def test_passes_at_each_level(self, logs, level, capsys):
        call_command("test_logging", "--level", level)
        out = capsys.readouterr().out
        assert "received their records" in out
        assert logs.file("general").exists()

    def test_fails_when_a_file_cannot_be_written(self, tmp_path, capsys):
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        configure_logs(blocker / "logs")
        with pytest.raises(CommandError, match="did not receive"):
            call_command("test_logging")
        assert "MISSING" in capsys.readouterr().out

    def test_invalid_level_is_a_usage_error(self, tmp_path):
        import os
        import sys

        result = subprocess.run(
            [sys.executable, "manage.py", "test_logging", "--level", "LOUD"],
            env={**os.environ, "LOG_BASE_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert "invalid choice: 'LOUD'" in result.stderr


class TestSeedRecipes:
    """The seed's grep recipes, run with real grep against files written by real requests."""

    def grep(self, logs, *args) -> list[str]:
        logs.lines("general")  # drain the queue
        result = subprocess.run(
            ["grep", *args], cwd=logs.path, capture_output=True, text=True, timeout=30
        )
        return result.stdout.splitlines()

    @pytest.fixture
    def filled(self, logs, john):
        walkthrough(john)
        Client(REMOTE_ADDR="10.9.9.9").get("/health/")
        logging.getLogger("billing").error("boom for the user", extra={"user_id": 123})
        log_security_event(event_type="card_testing", severity="critical", details={"n": 20})
        return logs

    def test_filter_by_user(self, filled):
        filled.lines("general")  # drain the queue before globbing the files
        lines = self.grep(
            filled,
            "user_id.*123",
            *sorted(p.name for p in Path(filled.path).glob("billing_api*.log")),
        )
        files = {line.split(":", 1)[0] for line in lines}
        assert {"billing_api.log", "billing_api_requests.log", "billing_api_security.log"} <= files

    def test_filter_by_ip(self, filled):
        lines = self.grep(filled, "ip.*192.168.1.100", "billing_api_requests.log")
        assert len(lines) == 8  # four requests, started + completed
        assert not any("10.9.9.9" in line for line in lines)

    def test_filter_by_endpoint(self, filled):
        lines = self.grep(filled, "path.*/api/v1/payments", "billing_api_requests.log")
        assert len(lines) == 6

    def test_errors_for_a_user(self, filled):
        lines = self.grep(
            filled,
            "-E",
            "ERROR.*user_id.*123",
            "billing_api.log",
            "billing_api_errors.log",
            "billing_api_requests.log",
        )
        assert any("boom for the user" in line for line in lines)

    def test_slow_requests(self, filled):
        assert self.grep(filled, "Slow API request", "billing_api_requests.log") == []

    def test_critical_security_events(self, filled):
        lines = self.grep(filled, "severity.*critical", "billing_api_security.log")
        assert len(lines) == 1 and "card_testing" in lines[0]


def test_a_batch_larger_than_one_write_is_written_whole_and_in_order(tmp_path, monkeypatch):
    from observability import handlers

    monkeypatch.setattr(handlers, "BATCH_BYTES", 1000)
    handler = handlers.QueuedFileHandler(str(tmp_path / "big.log"))
    writes = []
    lines = [f"line {n:03d} " + "x" * 90 for n in range(50)]
    try:
        handler.write_batch(lines[:5])  # opens the file
        target = handler._target
        original = target.write_lines
        monkeypatch.setattr(
            target, "write_lines", lambda text: (writes.append(text), original(text))
        )
        handler.write_batch(lines[5:])
    finally:
        handler.close()
    assert (tmp_path / "big.log").read_text().splitlines() == lines
    assert len(writes) >= 4 and all(len(text) <= 1100 for text in writes)
