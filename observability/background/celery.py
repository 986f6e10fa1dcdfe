"""Celery integration: the request's story into every task, and every task's lifecycle lines.

Enabled by OBSERVABILITY['CELERY'] = True (the `celery` extra). `install()` connects to
Celery's signals, so tasks need no code of their own:

- before_task_publish: the current context's header fields (observability.background.tasks).
- task_prerun: the task's context bound from its headers (validated), the started line.
- task_success / task_failure / task_retry: the outcome line, with duration and attempt,
  and the task duration metric; task_postrun: the context reset.
- a worker process that dies under a task: the failed line, written by the parent process
  (the task's Request class) with the task's ID and its request's ID.
- worker_process_shutdown: a prefork child drains its log queue before it `os._exit`s.
- worker_ready / worker_shutdown: the worker's own /metrics on CELERY_METRICS_ADDRESS
  (observability.background.worker_metrics).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Mapping
from contextvars import Token
from typing import Any

from observability.background import worker_metrics
from observability.background.tasks import (
    HEADER_FIELDS,
    TaskLines,
    log_published,
    task_context,
    task_headers,
)
from observability.monitoring.metrics import observe_task
from observability.output.writer import flush_logs, report
from observability.tracing.context import bound, reset_context, set_context

_runs: dict[str, tuple[Token[Mapping[str, Any]], TaskLines]] = {}
_UID = "observability.background.celery"


def headers_of(request: Any) -> dict[str, Any]:
    """The header fields a task's request holds (a worker's: attributes; eager: `headers`)."""
    found: dict[str, Any] = {}
    extra = getattr(request, "headers", None)
    for name in HEADER_FIELDS:
        value = getattr(request, name, None)
        if value is None and isinstance(extra, Mapping):
            value = extra.get(name)
        if value is not None:
            found[name] = value
    return found


def _attempt(request: Any) -> int:
    retries = getattr(request, "retries", 0)
    return (retries if isinstance(retries, int) else 0) + 1


def _on_publish(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is None:
        return
    fields = task_headers()
    retry = fields.get("obs_parent_task_id") == headers.get("id")
    if retry:  # a task's own retry: not a new task
        fields.pop("obs_parent_task_id")
    headers.update(fields)
    task_id, name = headers.get("id"), headers.get("task")
    if not retry and isinstance(task_id, str) and isinstance(name, str):
        log_published(name, task_id)


def _on_prerun(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
    request = task.request
    attempt = _attempt(request)
    fields = task_context(
        headers_of(request), task_id=str(task_id), task_name=task.name, attempt=attempt
    )
    token = set_context(fields)
    lines = TaskLines(task.name, attempt)
    _runs[str(task_id)] = (token, lines)
    lines.start()


def _lines(task_id: Any) -> TaskLines | None:
    run = _runs.get(str(task_id))
    return run[1] if run is not None else None


def _on_success(sender: Any = None, **kwargs: Any) -> None:
    lines = _lines(getattr(sender.request, "id", ""))
    if lines is not None:
        observe_task(sender.name, "succeeded", lines.succeeded())


def _on_failure(
    sender: Any = None,
    task_id: str = "",
    exception: BaseException | None = None,
    traceback: Any = None,
    **kwargs: Any,
) -> None:
    lines = _lines(task_id)
    if lines is not None and exception is not None:
        observe_task(sender.name, "failed", lines.failed(exception, traceback))


def _on_retry(sender: Any = None, request: Any = None, reason: Any = None, **kwargs: Any) -> None:
    lines = _lines(getattr(request, "id", ""))
    if lines is None:
        return
    when = getattr(reason, "when", None)
    delay = float(when) if isinstance(when, int | float) else None
    cause = getattr(reason, "exc", None) or getattr(reason, "message", None) or reason
    observe_task(sender.name, "retried", lines.retried(str(cause), delay))


def _on_postrun(task_id: str = "", **kwargs: Any) -> None:
    run = _runs.pop(str(task_id), None)
    if run is not None:
        with contextlib.suppress(ValueError):  # set in another context: leave it
            reset_context(run[0])


def _on_child_shutdown(**kwargs: Any) -> None:
    flush_logs()


def worker_lost_line(request: Any, exc: BaseException) -> None:
    """The failed line of a task whose worker process died, from the parent process."""
    headers = dict(getattr(request, "request_dict", {}) or {})
    retries = headers.get("retries", 0)
    attempt = (retries if isinstance(retries, int) else 0) + 1
    fields = task_context(
        headers, task_id=str(request.id), task_name=str(request.name), attempt=attempt
    )
    with bound({**_base(), **fields}):
        lines = TaskLines(str(request.name), attempt)
        began = getattr(request, "time_start", None)  # wall time the child accepted it
        if isinstance(began, float):
            lines.started -= max(0.0, time.time() - began)
        observe_task(str(request.name), "failed", lines.failed(exc, None, where=" (lost)"))
        flush_logs()


def _base() -> dict[str, Any]:
    from observability.tracing.context import CONTEXT_FIELDS

    return dict.fromkeys(CONTEXT_FIELDS)


@functools.cache
def _traced_request_class() -> type:
    from celery.exceptions import WorkerLostError
    from celery.worker.request import Request

    class TracedRequest(Request):  # type: ignore[misc]
        """Celery's Request, saying in the files when a task's worker process was lost."""

        def on_failure(
            self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False
        ) -> None:
            exc = getattr(exc_info, "exception", None)
            exc = getattr(exc, "exc", exc)  # billiard's ExceptionWithTraceback wraps it
            if isinstance(exc, WorkerLostError):
                try:
                    worker_lost_line(self, exc)
                except Exception as error:  # the parent process goes on whatever happens
                    report(f"the failed line of a lost task was not written: {error!r}")
            super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)

    return TracedRequest


def install(app: Any = None) -> None:
    """Connect the handlers (once); give `app`'s tasks (default: the current app's) the
    Request class that reports a lost worker process."""
    from celery import current_app, signals

    signals.before_task_publish.connect(_on_publish, weak=False, dispatch_uid=_UID)
    signals.task_prerun.connect(_on_prerun, weak=False, dispatch_uid=_UID)
    signals.task_success.connect(_on_success, weak=False, dispatch_uid=_UID)
    signals.task_failure.connect(_on_failure, weak=False, dispatch_uid=_UID)
    signals.task_retry.connect(_on_retry, weak=False, dispatch_uid=_UID)
    signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid=_UID)
    signals.worker_process_shutdown.connect(_on_child_shutdown, weak=False, dispatch_uid=_UID)
    signals.worker_init.connect(_on_worker_init, weak=False, dispatch_uid=_UID)
    worker_metrics.install()
    target = app if app is not None else current_app
    target.Task.Request = _traced_request_class()


def _on_worker_init(sender: Any = None, **kwargs: Any) -> None:
    """The worker's own app (the one `-A` named) gets the Request class too."""
    app = getattr(sender, "app", None)
    if app is not None:
        app.Task.Request = _traced_request_class()
