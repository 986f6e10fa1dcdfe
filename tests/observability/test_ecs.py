"""LOG_FORMAT=ecs: every field name and type is in the field reference of the ECS version the
lines declare (shipped: observability/schema/ecs-<version>-fields.json)."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import pytest
from django.test import Client

import observability
from observability.lines import ecs
from tests.conftest import FILES, configure_logs, token_for
from tests.observability.scenarios import write_every_kind_of_line

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

# The field reference of the ECS version the lines declare, as shipped in the repo
# (derived from elastic/ecs's generated/ecs/ecs_flat.yml: tests/observability/derive_ecs_fields.py).
REFERENCE = json.loads(
    (Path(observability.__file__).parent / "schema" / f"ecs-{ecs.VERSION}-fields.json").read_text()
)
ECS_TYPES: dict[str, str] = REFERENCE["fields"]
ARRAYS = frozenset(REFERENCE["arrays"])
ALLOWED = {name: set(values) for name, values in REFERENCE["allowed_values"].items()}
TEXT_TYPES = {"keyword", "wildcard", "match_only_text", "constant_keyword"}


def flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def check_type(name: str, value) -> None:
    """`name` is a field of the declared ECS version, and `value` of its type."""
    kind = "keyword" if name.startswith("labels.") else ECS_TYPES.get(name)
    assert kind is not None, f"{name} is not a field of ECS {ecs.VERSION}"
    if isinstance(value, list):
        assert name in ARRAYS, f"{name} is not an array in ECS"
    values = value if isinstance(value, list) else [value]
    for item in values:
        if kind == "long":
            assert isinstance(item, int) and not isinstance(item, bool), (name, item)
        elif kind == "ip":
            ipaddress.ip_address(item)
        elif kind == "date":
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", item), item
        else:
            assert kind in TEXT_TYPES and isinstance(item, str), (name, kind, item)
        if name in ALLOWED:
            assert item in ALLOWED[name], (name, item)


@pytest.fixture
def ecs_logs(tmp_path):
    log_dir = configure_logs(tmp_path / "logs", log_format="ecs")
    yield log_dir
    configure_logs(tmp_path / "after")


def ecs_lines(log_dir, name: str) -> list[dict]:
    return [flatten(json.loads(line)) for line in log_dir.lines(name)]


def test_every_field_of_every_line_is_ecs(ecs_logs, user):
    client = Client(raise_request_exception=False)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user)}"}
    client.post(
        "/api/v1/payments/?source=web",
        {"amount": "5.00", "currency": "USD", "payment_method": "pm_card_visa"},
        content_type="application/json",
        HTTP_USER_AGENT="curl/8",
        **auth,
    )
    client.get("/t/boom/")
    client.get("/api/v1/admin/stats/", **auth)  # a security event
    lines = [
        line
        for name in ("requests", "general", "errors", "security")
        for line in ecs_lines(ecs_logs, name)
    ]
    assert len(lines) >= 8
    for line in lines:
        for name, value in line.items():
            check_type(name, value)
        assert {"@timestamp", "log.level", "message", "ecs.version", "log.logger"} <= set(line)


def test_the_terminal_line_describes_the_request(ecs_logs, user):
    response = Client().get(
        "/t/whoami/?q=1",
        HTTP_AUTHORIZATION=f"Bearer {token_for(user)}",
        HTTP_USER_AGENT="curl/8",
    )
    lines = [
        line
        for line in ecs_lines(ecs_logs, "requests")
        if line.get("http.request.id") == response["X-Request-ID"]
    ]
    started, completed = lines
    assert started["url.query"] == "q=1" and started["user_agent.original"] == "curl/8"
    assert completed["http.response.status_code"] == 200
    assert completed["http.response.body.bytes"] > 0
    assert isinstance(completed["event.duration"], int) and completed["event.duration"] > 0
    assert (completed["event.outcome"], completed["event.category"], completed["event.type"]) == (
        "success",
        ["web"],
        ["access"],
    )
    assert completed["user.id"] == str(user.id) and completed["user.name"] == "john_doe"
    assert completed["client.ip"] == "127.0.0.1" and completed["http.request.method"] == "GET"
    assert completed["url.path"] == "/t/whoami/"
    assert completed["labels.route"] == "t/whoami/"
    trace_id, span_id = completed["trace.id"], completed["span.id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id) and completed["transaction.id"] == span_id
    assert response["traceresponse"] == f"00-{trace_id}-{span_id}-01"


def test_a_failure_has_its_masked_stack_trace(ecs_logs):
    response = Client(raise_request_exception=False).get("/t/card-error/")
    (failed,) = [
        line
        for line in ecs_lines(ecs_logs, "requests")
        if line.get("http.request.id") == response["X-Request-ID"] and line["log.level"] == "error"
    ]
    assert failed["event.outcome"] == "failure" and failed["event.type"] == ["access", "error"]
    assert "Traceback (most recent call last)" in failed["error.stack_trace"]
    assert "4111 1111 1111 1111" not in failed["error.stack_trace"]
    assert "****1111" in failed["error.stack_trace"]


def test_hostile_text_stays_on_one_line_and_decodes_back(ecs_logs):
    agent = "evil\n\u2028\u202e\x1b[2J <script>"
    response = Client().get("/t/plain/", HTTP_USER_AGENT=agent)
    count = len(ecs_logs.lines("requests"))
    raw = ecs_logs.file("requests").read_text()
    assert raw.count("\n") == count
    assert all(ord(c) < 128 for c in raw)
    started = next(
        line
        for line in ecs_lines(ecs_logs, "requests")
        if line.get("http.request.id") == response["X-Request-ID"]
    )
    assert started["user_agent.original"] == agent


def test_every_kind_of_line_holds_only_fields_of_the_declared_version(
    tmp_path, settings, user, staff
):
    settings.OBSERVABILITY = {
        **settings.OBSERVABILITY,
        "SERVICE_NAME": "billing-api",
        "SERVICE_VERSION": "1.4.2",
        "SERVICE_ENVIRONMENT": "staging",
    }
    log_dir = configure_logs(tmp_path / "logs", log_format="ecs", debug=True)
    try:
        write_every_kind_of_line(settings, user, staff)
        lines = [line for name in FILES for line in ecs_lines(log_dir, name)]
    finally:
        configure_logs(tmp_path / "after")
    assert len(lines) > 100
    for line in lines:
        assert line["ecs.version"] == REFERENCE["ecs_version"] == ecs.VERSION
        for name, value in line.items():
            check_type(name, value)
        assert (line["service.name"], line["service.version"], line["service.environment"]) == (
            "billing-api",
            "1.4.2",
            "staging",
        )
    # Numbers are numbers: a performance metric's value is event.duration, not a label.
    metrics = [line for line in lines if line["message"].startswith("Performance Metric")]
    assert metrics and all(isinstance(line["event.duration"], int) for line in metrics)
    assert all(line["event.kind"] == "metric" for line in metrics)
    assert not any("labels.value" in line for line in lines)
    unauthorized = next(line for line in lines if "authentication_failed" in line["message"])
    assert unauthorized["http.response.status_code"] == 401
    outside = next(line for line in lines if line["message"] == "outside any request")
    assert "client.ip" not in outside and "http.request.id" not in outside
