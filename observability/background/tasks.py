"""The request's story in background tasks: headers out, a validated context in, lifecycle lines.

No task queue is imported here; observability.background.celery wires these into Celery's signals.

On publish, `task_headers()` gives a fixed set of string fields (never the arguments, never
the whole context): the request ID, a `traceparent` naming a new child span of the
request's trace, its `tracestate`, the user, and the publishing task when a task publishes.
On the worker, `task_context()` reads them back with the same checks as incoming HTTP
headers (a bad or missing value is dropped: the task gets a fresh ID or trace), and binds
the task's own fields: its ID, name, attempt, and a span of its own.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from observability.masking.escaping import USERNAME_LIMIT
from observability.masking.percent import holds_card
from observability.masking.redaction import get_redactor
from observability.output.loggers import get_logger
from observability.tracing.context import current
from observability.tracing.ids import new_ids, new_span_id
from observability.tracing.request import valid_request_id
from observability.tracing.tracecontext import outgoing_headers, parse_traceparent

#: The header fields a task message carries, all strings.
REQUEST_ID = "obs_request_id"
TRACEPARENT = "obs_traceparent"
TRACESTATE = "obs_tracestate"
USER_ID = "obs_user_id"
USERNAME = "obs_username"
PARENT_TASK = "obs_parent_task_id"
HEADER_FIELDS = (REQUEST_ID, TRACEPARENT, TRACESTATE, USER_ID, USERNAME, PARENT_TASK)
HEADER_LIMIT = 1024
_USER_ID = re.compile(r"[0-9]{1,20}")


def task_headers() -> dict[str, str]:
    """The current context as a task message's header fields (empty outside any context)."""
    context = current()
    outgoing = outgoing_headers()
    headers: dict[str, str] = {}
    if context["request_id"] is not None:
        headers[REQUEST_ID] = str(context["request_id"])
    if "traceparent" in outgoing:
        headers[TRACEPARENT] = outgoing["traceparent"]
    if "tracestate" in outgoing:
        headers[TRACESTATE] = outgoing["tracestate"]
    if context["user_id"] is not None:
        headers[USER_ID] = str(context["user_id"])
    if context["username"] is not None:
        headers[USERNAME] = str(context["username"])
    if context.get("task_id") is not None:
        headers[PARENT_TASK] = str(context["task_id"])
    return headers


def new_task_id() -> str:
    """An ID for a task this process publishes: a dashed UUID4 (as Celery makes), never one
    that reads as a card number. About 0.7% of plain `uuid4()` texts do, across their
    dashes; a task ID that does is never written (its lines show `task_id=-`, and logtrace
    and the viewer cannot find the task). Pass it as `apply_async(task_id=...)`."""
    return new_ids()[0]


def _string(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    return value if isinstance(value, str) and value else None


def task_context(
    headers: Mapping[str, Any], *, task_id: str, task_name: str, attempt: int
) -> dict[str, Any]:
    """The context a task runs in, from its message's headers (each checked, as HTTP's)."""
    request_id, trace_id, span_id = new_ids()
    incoming = _string(headers, REQUEST_ID)
    fields: dict[str, Any] = {"request_id": request_id}
    if incoming is not None and valid_request_id(incoming):
        fields["request_id"] = incoming
    parent = parse_traceparent(_string(headers, TRACEPARENT))
    if parent is not None and not (holds_card(parent.trace_id) or holds_card(parent.parent_id)):
        trace_id = parent.trace_id
        fields["parent_span_id"] = parent.parent_id
        span_id = new_span_id(trace_id)
    fields.update(trace_id=trace_id, span_id=span_id)
    user_id = _string(headers, USER_ID)
    if user_id is not None and _USER_ID.fullmatch(user_id) and not holds_card(user_id):
        fields["user_id"] = int(user_id)
    username = _string(headers, USERNAME)
    if username is not None and len(username) <= HEADER_LIMIT:  # longer: refused, not cut
        fields["username"] = get_redactor().text(username, USERNAME_LIMIT)
    parent_task = _string(headers, PARENT_TASK)
    if parent_task is not None and valid_request_id(parent_task):
        fields["parent_task_id"] = parent_task
    # A task ID is the publisher's to choose: checked as a request ID is (the allowlist,
    # and no card number or token inside), else not written. `tracestate` is not bound:
    # a vendor's opaque text has no place on every record.
    shown_id = task_id if valid_request_id(task_id or "") else "-"
    fields.update(task_id=shown_id, task_name=get_redactor().text(task_name, 200), attempt=attempt)
    return fields


def log_published(task_name: str, task_id: str) -> None:
    """The publishing request's (or task's) line naming the task it set off: `logtrace`
    and the viewer join the task's records to the request that wrote this line. Outside
    any request or task (beat's schedule): no line."""
    if current()["request_id"] is None:
        return
    get_logger("TASK_LOGGER").info(
        "Task %s published",
        get_redactor().text(task_name, 200),
        extra={"task_event": "published", "published_task_id": task_id},
    )


class TaskLines:
    """The lifecycle lines of one task run, on TASK_LOGGER: started, then one outcome."""

    def __init__(self, task_name: str, attempt: int) -> None:
        self.task_name = task_name
        self.attempt = attempt
        self.started = time.perf_counter()

    def duration(self) -> float:
        return round(time.perf_counter() - self.started, 6)

    def _log(self, level: int, message: str, *args: Any, **extra: Any) -> None:
        exc_info = extra.pop("exc_info", None)
        get_logger("TASK_LOGGER").log(level, message, *args, extra=extra, exc_info=exc_info)

    def start(self) -> None:
        self._log(
            logging.INFO,
            "Task %s started (attempt %s)",
            self.task_name,
            self.attempt,
            task_event="started",
        )

    def succeeded(self) -> float:
        duration = self.duration()
        self._log(
            logging.INFO,
            "Task %s succeeded in %.3fs (attempt %s)",
            self.task_name,
            duration,
            self.attempt,
            task_event="succeeded",
            duration=duration,
        )
        return duration

    def failed(self, exc: BaseException, tb: TracebackType | None, *, where: str = "") -> float:
        duration = self.duration()
        self._log(
            logging.ERROR,
            "Task %s failed in %.3fs (attempt %s)%s: %s: %s",
            self.task_name,
            duration,
            self.attempt,
            where,
            type(exc).__name__,
            get_redactor().text(str(exc), 1000),
            task_event="failed",
            duration=duration,
            exc_info=(type(exc), exc, tb) if tb is not None else None,
        )
        return duration

    def retried(self, reason: str, delay: float | None) -> float:
        duration = self.duration()
        shown_delay = "-" if delay is None else f"{delay:.3f}"
        self._log(
            logging.WARNING,
            "Task %s retried after %.3fs (attempt %s): %s; next attempt in %s s",
            self.task_name,
            duration,
            self.attempt,
            get_redactor().text(reason, 1000),
            shown_delay,
            task_event="retried",
            duration=duration,
            retry_delay=None if delay is None else round(delay, 3),  # a number, or absent
        )
        return duration
