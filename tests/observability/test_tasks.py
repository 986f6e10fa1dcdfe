"""The request's story in Celery tasks: headers out, validated headers in, lifecycle lines.

Tasks run through Celery's own tracer (`Task.apply`), so the signals fire as in a worker.
"""

from __future__ import annotations

import pytest
from celery import Celery
from celery.exceptions import Retry

from observability import request_context
from observability.background.celery import install
from observability.background.tasks import HEADER_FIELDS, new_task_id, task_context, task_headers
from observability.tracing.context import get_context

CARD = "4111111111111111"
app = Celery("observability-tests", broker="memory://", set_as_current=False)
seen: list[dict] = []


@app.task(name="probe.record")
def record(**kwargs):
    seen.append(get_context())
    return "ok"


@app.task(name="probe.fail")
def fail(**kwargs):
    msg = f"card {kwargs.get('card')} declined"
    raise ValueError(msg)


@app.task(bind=True, name="probe.retry")
def again(self):
    raise Retry("gateway busy", ValueError("gateway busy"), 1.5)


@pytest.fixture(autouse=True)
def _installed():
    install(app)
    seen.clear()


def test_headers_are_a_fixed_set_of_strings_from_the_current_context():
    assert task_headers() == {}
    with request_context(request_id="req-1", user_id=7, username="alice") as context:
        headers = task_headers()
    assert set(headers) <= set(HEADER_FIELDS)
    assert all(isinstance(value, str) for value in headers.values())
    assert headers["obs_request_id"] == "req-1"
    assert headers["obs_user_id"] == "7" and headers["obs_username"] == "alice"
    trace = headers["obs_traceparent"].split("-")
    assert trace[1] == context["trace_id"] and trace[2] != context["span_id"]  # a child span


@pytest.mark.parametrize(
    ("headers", "check"),
    [
        ({"obs_request_id": CARD}, lambda f: f["request_id"] != CARD),
        ({"obs_request_id": "bad id\n"}, lambda f: "\n" not in f["request_id"]),
        ({"obs_traceparent": "00-zz-11-01"}, lambda f: len(f["trace_id"]) == 32),
        ({"obs_user_id": "1 OR 1=1"}, lambda f: "user_id" not in f),
        ({"obs_username": f"bob {CARD}"}, lambda f: CARD not in f["username"]),
        ({"obs_parent_task_id": "x" * 300}, lambda f: "parent_task_id" not in f),
        ({"obs_request_id": 42}, lambda f: f["request_id"] != 42),
    ],
)
def test_incoming_header_fields_are_checked_like_http_headers(headers, check):
    fields = task_context(headers, task_id="t-1", task_name="probe", attempt=1)
    assert check(fields)


def test_a_task_runs_in_its_request_context_and_logs_its_lifecycle(logs):
    with request_context(request_id="req-story", user_id=3, username="carol"):
        headers = task_headers()
    record.apply(kwargs={"amount": 5}, task_id="task-1", headers=headers)
    assert seen[0]["request_id"] == "req-story" and seen[0]["task_id"] == "task-1"
    assert seen[0]["attempt"] == 1 and seen[0]["user_id"] == 3
    lines = [line for line in logs.lines("general") if "[billing.tasks]" in line]
    assert len(lines) == 2
    assert "Task probe.record started (attempt 1)" in lines[0]
    assert "Task probe.record succeeded in" in lines[1]
    assert all("request_id=req-story " in line and "task_id=task-1 " in line for line in lines)
    assert "amount" not in logs.everything()  # arguments are not written


def test_a_failed_task_logs_its_traceback_masked_and_no_card_reaches_a_file(logs):
    with request_context(request_id="req-fail"):
        headers = task_headers()
    fail.apply(kwargs={"card": CARD}, task_id="task-2", headers=headers)
    errors = logs.text("errors")
    assert "Task probe.fail failed in" in errors and "Traceback" in errors
    assert "request_id=req-fail" in errors
    assert CARD not in logs.everything()


def test_a_retried_task_says_why_and_when_it_runs_next(logs):
    again.apply(task_id="task-3", retries=1)
    line = next(line for line in logs.lines("general") if "retried" in line)
    assert "Task probe.retry retried after" in line and "(attempt 2)" in line
    assert "gateway busy; next attempt in 1.500 s" in line


def test_a_task_publishing_a_task_names_itself_as_the_parent():
    fields = task_context(
        {"obs_request_id": "req-7"}, task_id="parent-task-1", task_name="probe", attempt=1
    )
    from observability.tracing.context import reset_context, set_context

    token = set_context(fields)  # as the worker binds it (observability.background.celery)
    try:
        headers = task_headers()
    finally:
        reset_context(token)
    assert headers["obs_request_id"] == "req-7"
    assert headers["obs_parent_task_id"] == "parent-task-1"
    child = task_context(headers, task_id="child-1", task_name="probe", attempt=1)
    assert child["parent_task_id"] == "parent-task-1" and child["request_id"] == "req-7"
    assert child["trace_id"] == fields["trace_id"] and child["span_id"] != fields["span_id"]


def test_task_runs_are_counted_by_name_and_outcome():
    from prometheus_client import REGISTRY

    def count(outcome: str) -> float:
        labels = {"task_name": "probe.record", "outcome": outcome}
        return REGISTRY.get_sample_value("celery_task_duration_seconds_count", labels) or 0

    before = count("succeeded")
    record.apply(task_id="task-m")
    assert count("succeeded") == before + 1


def test_publishing_in_a_request_writes_the_line_naming_the_task(logs):
    from observability.background.celery import _on_publish

    headers = {"id": "task-pub-1", "task": "probe.record"}
    with request_context(request_id="req-pub"):
        _on_publish(headers=headers)
    _on_publish(headers={"id": "task-pub-2", "task": "probe.record"})  # beat: no request
    lines = [line for line in logs.lines("general") if "published" in line]
    assert len(lines) == 1
    assert "Task probe.record published" in lines[0]
    assert "request_id=req-pub " in lines[0] and "published_task_id=task-pub-1" in lines[0]
    assert headers["obs_request_id"] == "req-pub"


def test_a_card_as_task_id_parent_task_or_user_id_is_not_bound():
    fields = task_context(
        {"obs_user_id": CARD, "obs_parent_task_id": CARD, "obs_tracestate": f"v={CARD}"},
        task_id=CARD,
        task_name="probe",
        attempt=1,
    )
    assert fields["task_id"] == "-"
    assert "user_id" not in fields and "parent_task_id" not in fields
    assert CARD not in repr(fields)


def test_a_task_without_headers_gets_a_fresh_request_id_of_its_own():
    from observability.tracing.request import valid_request_id

    first = task_context({}, task_id="t-1", task_name="probe", attempt=1)
    second = task_context({}, task_id="t-2", task_name="probe", attempt=1)
    assert valid_request_id(first["request_id"]) and first["request_id"] != "-"
    assert first["request_id"] != second["request_id"]  # its own, not a shared default
    assert "parent_span_id" not in first and "parent_task_id" not in first
    assert len(first["trace_id"]) == 32 and len(first["span_id"]) == 16
    record.apply(task_id="task-bare")  # beat's or cron's task: no headers at all
    assert valid_request_id(seen[0]["request_id"])
    assert seen[0]["request_id"] not in (first["request_id"], second["request_id"])
    assert "parent_span_id" not in seen[0]


def test_a_new_task_id_is_a_uuid4_that_never_reads_as_a_card_number():
    """About 0.7% of uuid4() texts read as a card number across their dashes (70 in 10,000
    expected); such a task ID is never written. new_task_id() gives none of them."""
    import re
    import uuid

    from observability.tracing.request import valid_request_id

    plain = [str(uuid.uuid4()) for _ in range(10_000)]
    assert not all(valid_request_id(task_id) for task_id in plain)  # the trap is real
    made = [new_task_id() for _ in range(10_000)]
    assert all(valid_request_id(task_id) for task_id in made)
    shape = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    assert all(shape.fullmatch(task_id) for task_id in made)
    assert len(set(made)) == len(made)
