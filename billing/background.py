"""Background work: publish a task to the broker, or run it here (the embedded default).

`publish()` is called after the transaction commits (billing.webhooks.events registers it
with `transaction.on_commit`). With a broker (CELERY_BROKER_URL), the task is sent within
CELERY_PUBLISH_TIMEOUT seconds or not at all: a broker that refuses or hangs is logged and
the request goes on; the outbox row stays due, and the sweep publishes it later. With no
broker, the task runs in this process on the embedded runner's thread (never inline in the
request), through Celery's own tracer: the same signals, so the same lifecycle lines and
the same retries with backoff.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
from typing import Any

from django.conf import settings
from django.core.signals import request_started

from billing.embedded import runner
from observability import carry_context, new_task_id, task_headers

logger = logging.getLogger(__name__)

_pool: concurrent.futures.ThreadPoolExecutor | None = None


def _publisher() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="publish")
    return _pool


def _forget_pool() -> None:
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def publish(task: Any, *, kwargs: dict[str, Any]) -> None:
    """Send `task` now; never raises, never waits longer than CELERY_PUBLISH_TIMEOUT."""
    if settings.BACKGROUND_EMBEDDED:
        runner.submit(task.name, kwargs, headers=task_headers())
        return
    timeout = settings.CELERY_PUBLISH_TIMEOUT
    future = _publisher().submit(
        carry_context(task.apply_async), kwargs=kwargs, retry=False, task_id=new_task_id()
    )
    try:
        future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        logger.warning(
            "Task %s not published within %.1f s (the broker hangs); the sweep will publish it",
            task.name,
            timeout,
        )
    except Exception as exc:
        logger.warning(
            "Task %s not published (%s: %s); the sweep will publish it",
            task.name,
            type(exc).__name__,
            exc,
        )


publish_now = publish


def start_embedded() -> None:
    """Run the in-process runner when no broker is configured (the web servers call it).

    Its thread starts with this process's first request, never at import: under
    `gunicorn --preload` the import runs in the master, and a thread running there when a
    worker forks could hold a lock (the log writer's, the database's) that the worker then
    inherits held, and hangs on (tests/e2e/test_servers.py's preload test).
    """
    if settings.BACKGROUND_EMBEDDED:
        request_started.connect(_start_runner, dispatch_uid="billing.background.embedded")


def _start_runner(**kwargs: Any) -> None:
    runner.start()


def retry(task: Any, *, delay: float, reason: str) -> BaseException:
    """The exception a task raises to run again in `delay` seconds, with `reason` logged."""
    from celery.exceptions import Retry

    exc = TaskAttemptFailed(reason)
    fallback: BaseException = Retry(reason, exc, delay)
    if task.request.is_eager:  # the embedded runner re-submits it (billing.embedded)
        return fallback
    try:
        published: BaseException | None = task.retry(
            countdown=delay, exc=exc, max_retries=None, throw=False
        )
    except Exception as error:  # the broker is down: the sweep will run it
        logger.warning("Retry of %s not published (%s)", task.name, type(error).__name__)
        return fallback
    return published or fallback


class TaskAttemptFailed(Exception):
    """An attempt that failed in a way worth retrying (the message says how)."""
