"""Where a request's logging CPU goes, phase by phase, and the total per thread.

Each phase is timed on its own (the minimum of repeated runs, µs per call), on a
realistic request (a browser's user agent, no query); then the whole middleware around a
view that returns at once is run N times, the request thread's CPU read with
`time.thread_time()` and the writer thread's from /proc (its utime + stime).

Run: .venv/bin/python bench/phases_bench.py   (make bench runs it as a section)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("BENCH_VARIANT", "ours")
os.environ.setdefault("BENCH_LOG_DIR", tempfile.mkdtemp(prefix="bench-phases-"))

import django

django.setup()

from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from observability import flush_logs  # noqa: E402
from observability.http.lifecycle import RequestLifecycle, begin  # noqa: E402
from observability.lines.line import CallSite, Line  # noqa: E402
from observability.middleware import RequestLoggingMiddleware  # noqa: E402
from observability.monitoring.metrics import observe_request  # noqa: E402
from observability.output.writer import writer  # noqa: E402
from observability.tracing.context import (  # noqa: E402
    Scope,
    current,
    request_scope,
    reset_context,
    set_context,
)
from observability.tracing.ids import new_ids  # noqa: E402

AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
REQUEST = RequestFactory().get("/api/v1/ping/", HTTP_USER_AGENT=AGENT)
RESPONSE = HttpResponse(b'{"ok":true}', content_type="application/json")
LOGGER = logging.getLogger(os.environ.get("BENCH_REQUEST_LOGGER", "billing.api"))
HANDLER = LOGGER.handlers[0]


def us(statement, number: int = 2000, repeat: int = 15) -> float:
    """Minimum µs per call; the writer is drained between runs (the queue never fills)."""
    best = float("inf")
    timer = timeit.Timer(statement, timer=time.thread_time)  # this thread's CPU only
    for _ in range(repeat):
        best = min(best, timer.timeit(number=number))
        flush_logs()
    return best / number * 1e6


def task_cpu(native_id: int) -> float:
    parts = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def started_and_terminal() -> tuple[Line, Line]:
    with RequestLifecycle(REQUEST, "middleware"):
        context = current()
    frame = sys._getframe(0)
    site = CallSite.of_frame(frame.f_code, frame.f_lasti)
    started = Line(
        time.time(),
        logging.INFO,
        LOGGER.name,
        "API Request started - User: anonymous (ID: -), IP: 127.0.0.1,"
        " Method: GET, Path: /api/v1/ping/",
        context,
        {"user_agent": AGENT},
        site=site,
    )
    fields = {
        "status": 200,
        "duration": 0.000812,
        "response_size": 11,
        "route": "api/v1/ping/",
        "view": "bench.urls.PingView",
    }
    terminal = Line(
        time.time(),
        logging.INFO,
        LOGGER.name,
        "API Request completed - Status: 200, Duration: 0.001 seconds",
        context,
        fields,
        site=site,
    )
    return started, terminal


def bind(fields: dict) -> None:
    """The context and the request's scope, set and reset."""
    token = set_context(fields)
    scope = request_scope.set(Scope("middleware"))
    request_scope.reset(scope)
    reset_context(token)


def enter_exit() -> None:
    """A lifecycle's way in (IDs, request read, context, started line) and out, no end."""
    lifecycle = RequestLifecycle(REQUEST, "middleware")
    lifecycle.__enter__()
    lifecycle.finished = True  # no terminal line
    lifecycle.__exit__(None, None, None)


def whole() -> None:
    """A whole lifecycle around a response: both lines."""
    with RequestLifecycle(REQUEST, "middleware") as lifecycle:
        lifecycle.respond(RESPONSE)


def phases() -> dict[str, float]:
    state = begin(REQUEST)

    def context() -> None:
        bind(state.fields)

    ids = us(new_ids)
    read = us(lambda: begin(REQUEST)) - ids
    with_started = us(enter_exit)
    everything = us(whole)
    started, terminal = started_and_terminal()
    formatter = HANDLER.formatter
    lines = [formatter.render(started), formatter.render(terminal)]
    flush_logs()
    return {
        "IDs (request, trace, span; CSPRNG, batched)": ids,
        "read the request (ID check, IP, method, path, trace context)": read,
        "bind the context and scope (set + reset)": us(context),
        "started line (build, render, queue)": with_started - ids - read,
        "terminal line (headers, route, metrics, build, render, queue)": everything - with_started,
        "of which metrics (one counter, one histogram)": us(
            lambda: observe_request("GET", "api/v1/ping/", 200, 0.001)
        ),
        "of which formatting the started line (on the request thread)": us(
            lambda: formatter.render(started)
        ),
        "of which formatting the terminal line (on the request thread)": us(
            lambda: formatter.render(terminal)
        ),
        "write one line, in batches of 512 (writer thread)": us(
            lambda: (
                HANDLER._target.write_lines("\n".join(lines * 256)) if HANDLER._target else None
            ),
            number=20,
        )
        / 512,
    }


def totals(count: int = 30000) -> dict[str, float]:
    """The whole middleware, in batches of 1,000: the request thread's CPU per request in
    the least costly batch (as every phase above: noise only adds), and the writer's
    CPU over all batches (read from /proc in clock ticks, too coarse for one batch)."""
    middleware = RequestLoggingMiddleware(lambda request: RESPONSE)
    for _ in range(2000):
        middleware(REQUEST)
    flush_logs()
    listener = writer._thread.native_id if writer._thread is not None else None
    before_writer = task_cpu(listener) if listener else 0.0
    batches = []
    for _ in range(count // 1000):  # flushed every 1000: the queue never fills
        before = time.thread_time()
        for _ in range(1000):
            middleware(REQUEST)
        batches.append((time.thread_time() - before) / 1000 * 1e6)
        flush_logs()
    writer_cpu = (task_cpu(listener) - before_writer) if listener else 0.0
    batches.sort()
    return {
        "request thread, whole middleware": batches[0],
        "writer thread": writer_cpu / count * 1e6,
        "request thread, median batch": batches[len(batches) // 2],
    }


def main() -> None:
    result = phases()
    total = totals()
    print("| phase | µs |")
    print("| --- | --- |")
    for name, value in result.items():
        print(f"| {name} | {value:.1f} |")
    least = total["request thread, whole middleware"] + total["writer thread"]
    median = total["request thread, median batch"] + total["writer thread"]
    for name in ("request thread, whole middleware", "writer thread"):
        print(f"| **{name}** (per request, measured with thread CPU) | **{total[name]:.1f}** |")
    print(
        f"| **total CPU per request** (least batch of 1,000; the median batch: {median:.1f}) "
        f"| **{least:.1f}** |"
    )
    total["total CPU per request"] = least
    total["total CPU per request, median batch"] = median
    print(json.dumps({**result, **total}))


if __name__ == "__main__":
    main()
