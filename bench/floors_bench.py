"""Each phase of a request's logging beside its floor: the least Python doing the same job.

A floor does a phase's work with every value prepared in advance and nothing checked:
no masking, no escaping, no validation, no flags, no fallback for a user's handlers. It
is what that phase would cost if the promises (README, "Design promises") were dropped;
the difference is what the promises cost, per phase. Both sides run in this process, on
the same request, with this thread's CPU clock, the least of repeated runs.

Run: .venv/bin/python bench/floors_bench.py   (make bench runs it as a section)
"""

from __future__ import annotations

import collections
import contextvars
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.phases_bench import (  # Django set up
    AGENT,
    REQUEST,
    RESPONSE,
    bind,
    enter_exit,
    us,
    whole,
)
from observability import flush_logs
from observability.http.lifecycle import begin
from observability.middleware import RequestLoggingMiddleware
from observability.monitoring.metrics import instruments, observe_request
from observability.tracing.ids import new_ids

RAW = os.urandom(40)
ROUTE = "api/v1/ping/"
CONTEXT = (
    " request_id=0f3c7a2e-1b2c-4d5e-8f90-123456789abc user_id=- username=- ip=127.0.0.1"
    " method=GET path=/api/v1/ping/ trace_id=4bf92f3577b34da6a3ce929d0e0e4736"
    " span_id=00f067aa0ba902b7"
)
_floor_var: contextvars.ContextVar[object] = contextvars.ContextVar("floor")
_lines: collections.deque[str] = collections.deque(maxlen=4096)  # the floor's "queue"
_stamp = [0, ""]


# --- the floors --------------------------------------------------------------------


def floor_ids() -> tuple[str, str, str]:
    h = RAW.hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}", h[32:64], h[64:80]


def floor_read() -> tuple[str, str, str, str | None, str | None]:
    meta = REQUEST.META
    ids = (meta.get("HTTP_X_REQUEST_ID"), meta.get("HTTP_TRACEPARENT"))
    return meta["REMOTE_ADDR"], REQUEST.method, REQUEST.path, *ids


def floor_bind() -> None:
    _floor_var.reset(_floor_var.set(CONTEXT))


def floor_timestamp(created: float) -> str:
    second = int(created)
    if second != _stamp[0]:
        _stamp[0], _stamp[1] = second, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
    return f"{_stamp[1]},{int((created - second) * 1000):03d}"


def floor_started() -> None:
    _lines.append(
        f"{floor_timestamp(time.time())} INFO [billing.api] API Request started - User: "
        f"anonymous (ID: -), IP: 127.0.0.1, Method: GET, Path: /api/v1/ping/ |{CONTEXT}"
        f' user_agent="{AGENT}"'
    )


def floor_metrics(children: tuple) -> None:
    children[0].inc()
    children[1].observe(0.000812)


def floor_terminal(children: tuple) -> None:
    duration = time.perf_counter() - 1.0
    store = RESPONSE.headers._store
    store["x-request-id"] = ("X-Request-ID", "0f3c7a2e-1b2c-4d5e-8f90-123456789abc")
    store["traceresponse"] = (
        "traceresponse",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    floor_metrics(children)
    _lines.append(
        f"{floor_timestamp(time.time())} INFO [billing.api] API Request completed - Status: "
        f"200, Duration: {duration:.3f} seconds |{CONTEXT} status=200 duration={duration!r}"
        f" response_size=11 route={ROUTE} view=bench.urls.PingView"
    )


def floor_middleware(children: tuple) -> None:
    floor_ids()
    floor_read()
    token = _floor_var.set(CONTEXT)
    floor_started()
    floor_terminal(children)
    _floor_var.reset(token)


def python_calls_per_request(call) -> float:
    """How many Python functions one call runs (sys.setprofile counts them)."""
    count = 0

    def profile(frame, event, arg) -> None:
        nonlocal count
        if event == "call":
            count += 1

    sys.setprofile(profile)
    for _ in range(100):
        call()
    sys.setprofile(None)
    return count / 100


def nothing() -> None:
    return None


def main() -> None:
    made = instruments()
    assert made is not None
    children = (made.requests.labels("GET", ROUTE, "200"), made.duration.labels("GET", ROUTE))
    state = begin(REQUEST)
    middleware = RequestLoggingMiddleware(lambda request: RESPONSE)

    ids, read, bound = us(new_ids), us(lambda: begin(REQUEST)), us(lambda: bind(state.fields))
    started, everything = us(enter_exit), us(whole)
    rows = [
        ("IDs (request, trace, span)", ids, us(floor_ids)),
        ("read the request", read - ids, us(floor_read)),
        ("bind the context (and the request's scope)", bound, us(floor_bind)),
        ("started line", started - read - bound, us(floor_started)),
        (
            "terminal line (headers, metrics, line)",
            everything - started,
            us(lambda: floor_terminal(children)),
        ),
        (
            "of which metrics (prometheus_client)",
            us(lambda: observe_request("GET", ROUTE, 200, 0.000812)),
            us(lambda: floor_metrics(children)),
        ),
        (
            "whole middleware, request thread",
            us(lambda: middleware(REQUEST)),
            us(lambda: floor_middleware(children)),
        ),
    ]
    calls = python_calls_per_request(lambda: middleware(REQUEST))
    floor_calls = python_calls_per_request(lambda: floor_middleware(children))
    flush_logs()
    print("| phase | ours µs | floor µs | ours - floor |")
    print("| --- | --- | --- | --- |")
    for name, ours, floor in rows:
        print(f"| {name} | {ours:.1f} | {floor:.1f} | {ours - floor:.1f} |")
    print(
        f"| Python calls a request | {calls:.0f} | {floor_calls:.0f} | {calls - floor_calls:.0f} |"
    )
    print(f"| one empty Python call, µs | {us(nothing, number=20000):.2f} | | |")
    print(
        json.dumps(
            {name: [ours, floor] for name, ours, floor in rows} | {"calls": [calls, floor_calls]}
        )
    )


if __name__ == "__main__":
    main()
