"""The cost observability's Celery integration adds per task published and per task run.

Published: the `before_task_publish` handler (the current request's fixed header fields,
a new child span) inside a request's context, per message. Run: a no-op task through
Celery's own tracer (`Task.apply`, as a worker and the embedded runner run it) with the
integration's handlers connected, minus the same without them: the context bound from the
headers (validated), the started and succeeded lines (formatted and queued to the files),
the duration metric. The writer thread's disk time is not in it (it is off the task's path).

Run: .venv/bin/python bench/tasks_bench.py  (make bench runs it as a section)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_CONSOLE", "0")
os.environ["LOG_BASE_DIR"] = tempfile.mkdtemp(prefix="tasks-bench-")

import django

django.setup()

from celery import Celery, signals  # noqa: E402

from observability import request_context  # noqa: E402
from observability.background import celery as integration  # noqa: E402
from observability.background.tasks import task_headers  # noqa: E402
from observability.output.writer import flush_logs  # noqa: E402

app = Celery("bench", broker="memory://", set_as_current=False)


@app.task(name="bench.noop")
def noop() -> None:
    return None


HANDLERS = (
    (signals.task_prerun, integration._on_prerun),
    (signals.task_success, integration._on_success),
    (signals.task_postrun, integration._on_postrun),
)


def us(statement, number: int) -> float:
    return min(timeit.repeat(statement, number=number, repeat=7)) / number * 1e6


def main() -> None:
    with request_context(request_id="bench-request", user_id=1, username="alice"):
        publish = us(
            lambda: integration._on_publish(headers={"id": "t-1", "task": "bench.noop"}), 20_000
        )
        headers = task_headers()
    for signal, handler in HANDLERS:
        signal.disconnect(handler, dispatch_uid=integration._UID)
    bare = us(lambda: noop.apply(headers=headers), 2_000)
    integration.install(app)
    traced = us(lambda: noop.apply(headers=headers), 2_000)
    flush_logs(30)
    run = traced - bare
    print("| per task | µs |")
    print("| --- | --- |")
    print(
        f"| published: the header fields and the published line (before_task_publish) | {publish:.2f} |"
    )
    print(f"| run: context from the headers, started + succeeded lines, metric | {run:.2f} |")
    print(f"| (a no-op task through Celery's tracer without the integration) | {bare:.2f} |")
    print(json.dumps({"publish_us": publish, "run_us": run, "bare_run_us": bare}))


if __name__ == "__main__":
    main()
