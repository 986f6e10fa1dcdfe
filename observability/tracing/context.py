"""The request context: who, where and which request, held in contextvars.

One ContextVar holds an immutable snapshot (a dict never mutated after it is set);
`bind()` sets a new snapshot. Mutating a dict that lives inside a ContextVar would leak
changes into every context that copied it (threads, asyncio tasks), see
https://docs.python.org/3/library/contextvars.html#contextvars.copy_context.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple, ParamSpec, TypeVar

from observability.masking.redaction import get_redactor
from observability.tracing import otel
from observability.tracing.ids import new_ids

P = ParamSpec("P")
R = TypeVar("R")

#: The fields every record carries; None in the context when unknown (outside a request,
#: anonymous), written "-" on a record's attributes (a user's `%(request_id)s`) and in text.
CONTEXT_FIELDS = (
    "request_id",
    "user_id",
    "username",
    "ip",
    "method",
    "path",
    "trace_id",
    "span_id",
)
#: What a record's attribute holds for an absent context value.
EMPTY = "-"
#: The request attribute where the middleware leaves the request's final context.
CONTEXT_ATTR = "_observability_context"
_EMPTY_CONTEXT: Mapping[str, Any] = dict.fromkeys(CONTEXT_FIELDS)

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "observability_context", default=_EMPTY_CONTEXT
)


class Scope(NamedTuple):
    """The current HTTP request beyond its log fields: who logs its lifecycle lines
    ("middleware" or "decorator"), and its trace's flags and vendors' tracestate."""

    owner: str
    flags: str = "01"
    tracestate: str | None = None


#: Set for the duration of a request by its lifecycle; None outside HTTP requests.
request_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "observability_request_scope", default=None
)


def get_context() -> dict[str, Any]:
    """Return a copy of the current context (every CONTEXT_FIELDS key, plus bound fields),
    an absent value written "-" as on records."""
    return {key: EMPTY if value is None else value for key, value in _context.get().items()}


#: current() -> the current snapshot itself, read-only (no copy, for the hot path). The
#: ContextVar's own method, not a function around it: four calls a request, no frame.
current: Callable[[], Mapping[str, Any]] = _context.get


def get_request_id(default: str | None = EMPTY) -> str | None:
    """Return the current request ID, or `default` ("-") outside a request."""
    request_id = _context.get()["request_id"]
    return default if request_id is None else str(request_id)


def set_context(fields: Mapping[str, Any]) -> contextvars.Token[Mapping[str, Any]]:
    """Replace the context with CONTEXT_FIELDS (None) plus `fields`; reset with the token."""
    return _context.set({**_EMPTY_CONTEXT, **fields})


#: set_whole_context(context) -> token: set a context that holds every CONTEXT_FIELDS key
#: already, in their order, and that nobody changes once set (the lifecycle's): as it is,
#: without set_context's copy. reset_context(token) puts the one before back. Both are
#: the ContextVar's own methods (no frame: once a request each).
set_whole_context: Callable[[Mapping[str, Any]], contextvars.Token[Mapping[str, Any]]] = (
    _context.set
)
reset_context: Callable[[contextvars.Token[Mapping[str, Any]]], None] = _context.reset


def bind(**fields: Any) -> None:
    """Add fields (e.g. payment_id=42) to the context for the rest of the current request.

    Values go through the redaction policy here, once: every later record copies them.
    """
    redactor = get_redactor()
    fields = {key: redactor.field(key, value) for key, value in fields.items()}
    _context.set({**_context.get(), **fields})


def bind_fields(fields: Mapping[str, Any]) -> None:
    """Add fields already masked (the request module's) to the current context."""
    _context.set({**_context.get(), **fields})


@contextmanager
def bound(snapshot: Mapping[str, Any]) -> Iterator[None]:
    """Run a block with a saved context (a streaming response runs after the middleware)."""
    token = _context.set(snapshot)
    try:
        yield
    finally:
        _context.reset(token)


def reset() -> None:
    """Forget any context (tests, and a worker thread reused between jobs)."""
    _context.set(_EMPTY_CONTEXT)
    request_scope.set(None)


@contextmanager
def request_context(request_id: str | None = None, **fields: Any) -> Iterator[dict[str, Any]]:
    """Give work outside HTTP (a command, a job) its own request ID and context.

    >>> with request_context(job="nightly-invoices"):
    ...     logger.info("started")   # carries request_id=<new uuid> job=nightly-invoices

    Inside an active OpenTelemetry span, its records carry that span's trace and span IDs
    (as a request's do), so the job and the calls it makes are one trace; otherwise a new
    trace of its own.
    """
    from observability.sentry import request_scope as sentry_scope

    new_id, trace_id, span_id = new_ids()
    active = otel.active_span()
    if active is not None:
        trace_id, span_id = active[0], active[1]
    ids = {"request_id": request_id or new_id, "trace_id": trace_id, "span_id": span_id}
    token = set_context({**ids, **fields})
    tagged = sentry_scope(ids)  # Sentry's events of this job carry its IDs
    try:
        yield get_context()
    finally:
        _context.reset(token)
        if tagged is not None:
            tagged.__exit__(None, None, None)


def carry_context(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap `func` to run in a copy of the caller's current context.

    Threads start with an empty context and pool threads keep whatever the last task
    left, so pass `carry_context(fn)` to `Thread(target=...)` or `executor.submit(...)`.
    """
    snapshot = contextvars.copy_context()

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return snapshot.copy().run(func, *args, **kwargs)

    return run
