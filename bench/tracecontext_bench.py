"""The per-request cost of trace context, measured as the difference it makes.

`without` does what a request did before trace context (bind who owns the lifecycle);
`with` does what it does now (read and validate traceparent + tracestate, ask
OpenTelemetry for an active span, bind owner + flags + tracestate, format and set the
traceresponse header, put OpenTelemetry's attribute names on three records). The IDs
themselves (request, trace and span ID from one CSPRNG batch) are shown apart.

Run: .venv/bin/python bench/tracecontext_bench.py  (make bench runs it as a section)
"""

from __future__ import annotations

import contextvars
import json
import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_CONSOLE", "0")

import django

django.setup()

from observability.tracing import otel  # noqa: E402
from observability.tracing.context import Scope, request_scope  # noqa: E402
from observability.tracing.ids import new_ids  # noqa: E402
from observability.tracing.request import incoming_trace  # noqa: E402
from observability.tracing.tracecontext import format_traceparent  # noqa: E402

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
WITH_HEADER = {"HTTP_TRACEPARENT": VALID, "HTTP_TRACESTATE": "rojo=1", "REMOTE_ADDR": "1"}
WITHOUT_HEADER = {"REMOTE_ADDR": "1"}
RECORDS = 3  # started, one of the view's, completed
owner_only: contextvars.ContextVar[str | None] = contextvars.ContextVar("owner", default=None)
TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def without() -> None:
    owner_only.reset(owner_only.set("middleware"))


def with_trace(meta: dict[str, str]) -> None:
    parent, tracestate, _ = incoming_trace(meta)
    otel.active_span()
    flags = parent.flags if parent is not None else "01"
    token = request_scope.set(Scope("middleware", flags, tracestate))
    headers = {"traceresponse": format_traceparent(TRACE, SPAN, flags)}
    for _ in range(RECORDS):
        otel.record_attrs(TRACE, SPAN, flags)
    request_scope.reset(token)
    del headers


def us(statement, number: int = 50_000) -> float:
    return min(timeit.repeat(statement, number=number, repeat=9)) / number * 1e6


def main() -> None:
    base = us(without)
    with_header = us(lambda: with_trace(WITH_HEADER)) - base
    fresh = us(lambda: with_trace(WITHOUT_HEADER)) - base
    ids = us(new_ids)
    print("| per request | µs |")
    print("| --- | --- |")
    print(f"| trace context, incoming traceparent adopted | {with_header:.2f} |")
    print(f"| trace context, no traceparent (a new trace) | {fresh:.2f} |")
    print(
        f"| request + trace + span IDs from the batched CSPRNG (not included above) | {ids:.2f} |"
    )
    print(json.dumps({"with_traceparent_us": with_header, "new_trace_us": fresh, "ids_us": ids}))


if __name__ == "__main__":
    main()
