"""The embedded runner: tasks in this process, on one background thread, after commit.

With no broker configured, a web process runs its own tasks: `submit()` puts a task on a
timetable, the thread runs it when due through Celery's tracer (`Task.apply`), so the task
is logged as a task (the same signals), and a task that asks to be retried is put back with
the delay it asked for. The thread also runs the sweep every WEBHOOK_SWEEP_INTERVAL. A
forked child starts with an empty timetable (its parent's thread is not its own).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from observability import log_published, new_task_id

logger = logging.getLogger(__name__)
SWEEP_TASK = "billing.webhook_sweep"


@dataclass(order=True)
class Job:
    due: float
    order: int
    name: str = field(compare=False)
    kwargs: dict[str, Any] = field(compare=False)
    headers: dict[str, str] = field(compare=False)
    task_id: str = field(compare=False)
    retries: int = field(compare=False, default=0)


class EmbeddedRunner:
    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._jobs: list[Job] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._next_sweep = 0.0

    def start(self) -> None:
        if self._thread is not None:  # every request asks: started once per process
            return
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="tasks", daemon=True)
                self._thread.start()

    def submit(
        self,
        name: str,
        kwargs: dict[str, Any],
        *,
        headers: dict[str, str],
        delay: float = 0.0,
        task_id: str | None = None,
        retries: int = 0,
    ) -> str:
        if task_id is None:  # a new task (not a retry): the publisher's line names it
            task_id = new_task_id()
            log_published(name, task_id)
        job = Job(
            time.monotonic() + delay, next(self._order), name, kwargs, headers, task_id, retries
        )
        self.start()
        with self._cond:
            heapq.heappush(self._jobs, job)
            self._cond.notify()
        return task_id

    def pending(self) -> int:
        with self._cond:
            return len(self._jobs)

    def _next(self) -> Job | None:
        from django.conf import settings

        with self._cond:
            while True:
                now = time.monotonic()
                if now >= self._next_sweep:
                    self._next_sweep = now + settings.WEBHOOK_SWEEP_INTERVAL
                    return Job(now, -1, SWEEP_TASK, {}, {}, new_task_id())
                if self._jobs and self._jobs[0].due <= now:
                    return heapq.heappop(self._jobs)
                wake = self._next_sweep
                if self._jobs:
                    wake = min(wake, self._jobs[0].due)
                self._cond.wait(max(0.0, wake - now))

    def _loop(self) -> None:
        from celery import current_app
        from django.db import close_old_connections

        # The tasks' modules (billing.tasks), as a worker imports them at its start: a web
        # process has not necessarily imported them yet. Not through the loader's
        # import_default_modules(): its signal also makes Celery's Django fixup run
        # django.setup() again, which re-applies LOGGING in this live process (every handler
        # closed and rebuilt under the requests' feet) and runs every system check.
        current_app.autodiscover_tasks(force=True)
        while True:
            job = self._next()
            if job is None:
                continue
            try:
                self._run(job)
            except Exception:
                logger.exception("Embedded task %s could not be run", job.name)
            finally:
                close_old_connections()

    def _run(self, job: Job) -> None:
        from celery import current_app
        from celery.exceptions import Retry

        task = current_app.tasks[job.name]
        result = task.apply(
            kwargs=job.kwargs, task_id=job.task_id, retries=job.retries, headers=job.headers
        )
        if result.state == "RETRY" and isinstance(result.result, Retry):
            when = result.result.when
            delay = float(when) if isinstance(when, int | float) else 0.0
            self.submit(
                job.name,
                job.kwargs,
                headers=job.headers,
                delay=delay,
                task_id=job.task_id,
                retries=job.retries + 1,
            )


runner = EmbeddedRunner()
