"""Spans: a block of code, a query or an outgoing call, with its own span ID and duration.

    from observability import span

    with span("gateway.charge", payment_id=payment.id):      # or: async with span(...)
        result = gateway.charge(...)

writes one record when the block ends (SPAN_LOGGER, at SPAN_LEVEL):

    Span gateway.charge: 412.303 ms | ... event_type=span span_name=gateway.charge
        child_span_id=<16 hex> duration=0.412303 payment_id=42 [error=GatewayTimeout]

Every span record carries `child_span_id` (its own span ID: the request's `span_id` is its
parent) and, inside another span, `parent_span_id`. Its time is when it ended: it started
`duration` seconds before. Queries (observability.spans.queries) and outgoing calls
(observability.clients) write their records with `span_record`, so they nest the same way.
Fields go through the redaction filter like any record's.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from observability.conf import obs_settings
from observability.output.loggers import get_logger, level_of
from observability.tracing.context import current
from observability.tracing.ids import new_span_id

#: The innermost span() being run: records made inside it name it as their parent.
_parent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "observability_span", default=None
)


def child_span_id() -> str:
    """A new span ID in the current trace."""
    trace_id = current()["trace_id"]
    return new_span_id(str(trace_id) if trace_id is not None else "")


def span_record(
    level: int,
    message: str,
    args: tuple[Any, ...],
    fields: Mapping[str, Any],
    *,
    span_id: str | None = None,
    stacklevel: int = 2,
) -> None:
    """One span's record: `fields` plus its own span ID and its parent span, if any."""
    logger = get_logger("SPAN_LOGGER")
    if not logger.isEnabledFor(level):
        return
    extra = {**fields, "child_span_id": span_id or child_span_id()}
    parent = _parent.get()
    if parent is not None:
        extra["parent_span_id"] = parent
    logger.log(level, message, *args, extra=extra, stacklevel=stacklevel + 1)


def error_name(exc: BaseException | None) -> str | None:
    return None if exc is None else type(exc).__name__


class span:  # a context manager used as a function, like contextlib's suppress
    """A block as a span: `with span(name, **fields):` or `async with span(...)`."""

    __slots__ = ("fields", "name", "span_id", "started", "token")

    def __init__(self, name: str, **fields: Any) -> None:
        self.name = name
        self.fields = fields
        self.span_id = ""
        self.started = 0.0
        self.token: contextvars.Token[str | None] | None = None

    def __enter__(self) -> span:
        self.span_id = child_span_id()
        self.token = _parent.set(self.span_id)
        self.started = time.perf_counter()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, traceback: object) -> None:
        duration = time.perf_counter() - self.started
        if self.token is not None:
            _parent.reset(self.token)
        level = level_of(obs_settings.SPAN_LEVEL) or logging.INFO
        fields: dict[str, Any] = {
            "event_type": "span",
            "span_name": self.name,
            "duration": round(duration, 6),
            **self.fields,
        }
        if exc is not None:
            fields["error"] = error_name(exc)
        message = "Span %s: %.3f ms"
        span_record(level, message, (self.name, duration * 1000), fields, span_id=self.span_id)

    async def __aenter__(self) -> span:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)
