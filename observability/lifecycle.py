"""One request's lifecycle, from its context to its terminal line: a context manager.

The middleware and the @log_api_request decorator both wrap a view call in it, sync or
async alike:

    with RequestLifecycle(request, owner="middleware") as lifecycle:
        response = get_response(request)
        return lifecycle.respond(response)

On the way in it binds the request's context (IDs, client, method, path) and logs the
started line; `respond()` sets the response header and logs the terminal line (or, for
a streaming response, arranges for it when the stream ends); an exception escaping the
block logs the failed line. The context is reset on the way out of the same call.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextvars import Token
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from observability import fastpath, messages, otel
from observability.conf import obs_settings
from observability.context import (
    CONTEXT_ATTR,
    EMPTY,
    Scope,
    bound,
    current,
    request_scope,
    reset_context,
    set_context,
)
from observability.events import log_security_event
from observability.fastpath import LineContext, PreparedLine
from observability.handlers import QueuedHandler
from observability.ids import new_ids
from observability.loggers import get_logger
from observability.metrics import count_sampled_out, observe_request, request_started
from observability.request import (
    bind_user,
    incoming_request_id,
    incoming_trace,
    known_user,
    request_fields,
    response_size,
    route_of,
    started_details,
)
from observability.sampling import excluded, level_of, sample_for
from observability.seen_ids import seen_ids
from observability.tracecontext import SAMPLED, format_traceparent

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Tokens = tuple[Token[Mapping[str, Any]], Token[Scope | None]]
#: Where the middleware leaves a view's exception for the failed line (Django turns it
#: into a 500 response before the middleware sees it).
EXC_ATTR = "_observability_exc_info"


@dataclass
class RequestState:
    """What the start of a request hands to its end."""

    fields: dict[str, Any]
    started: float
    logged: bool
    flags: str
    tracestate: str | None
    rejected_id_length: int = 0
    incoming_id: bool = False  # the client's: looked up in the IDs every worker saw
    refused_trace: str = ""  # why a valid traceparent was not adopted


def begin(request: Any) -> RequestState:
    """The request's context fields (IDs, IP, method, path) and whether it is logged.

    The trace is OpenTelemetry's active span when there is one, else the caller's
    (a trusted, valid `traceparent`), else a new one; the span is always this request's.
    """
    django_request = getattr(request, "_request", request)
    meta = django_request.META
    incoming, rejected = incoming_request_id(meta)
    request_id, trace_id, span_id = new_ids()
    if incoming is not None:
        request_id = incoming
    flags, tracestate, refused_trace = SAMPLED, None, ""
    active = otel.active_span()
    if active is not None:
        trace_id, span_id, flags = active
    else:
        parent, tracestate, refused_trace = incoming_trace(meta)
        if parent is not None:
            trace_id, flags = parent.trace_id, parent.flags
    fields = {"request_id": request_id, "trace_id": trace_id, "span_id": span_id}
    fields.update(request_fields(request))
    # The path the router matches: SCRIPT_NAME is a prefix a proxy (or a client) adds.
    logged = not excluded(django_request.path_info)
    state = RequestState(
        fields, time.perf_counter(), logged, flags, tracestate, rejected, incoming is not None
    )
    state.refused_trace = refused_trace
    return state


#: The scopes without a tracestate, made once: (owner, flags) -> Scope.
_scopes = {
    (owner, flags): Scope(owner, flags)
    for owner in ("middleware", "decorator")
    for flags in ("00", "01")
}


class RequestLifecycle:
    """The started line on entry, one terminal line (and a slow warning) on the way out."""

    def __init__(self, request: Any, owner: str) -> None:
        self.request = request
        self.owner = owner
        self.logger = get_logger("REQUEST_LOGGER")
        self.finished = False
        self._tokens: Tokens | None = None
        self._shared: LineContext | None = None  # the context's share of the lines
        self._plan: tuple[QueuedHandler, ...] | None = None
        self._in_flight: Callable[[], None] | None = None  # ends its count in the metrics

    def __enter__(self) -> RequestLifecycle:
        self.state = state = begin(self.request)
        scope = _scopes.get((self.owner, state.flags)) if state.tracestate is None else None
        if scope is None:
            scope = Scope(self.owner, state.flags, state.tracestate)
        self._tokens = (set_context(state.fields), request_scope.set(scope))
        context = current()
        self._shared = LineContext(context, fastpath.begun_text(context))
        self.sample = sample_for(state.fields["request_id"], self.logger, state.started)
        self._log_started()
        self._in_flight = request_started(state.fields["method"])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is not None and exc is not None and not self.finished:
                self.finish(500, None, (exc_type, exc, traceback))
        finally:
            if self._in_flight is not None:
                self._in_flight()
            if self._tokens is not None:
                request_scope.reset(self._tokens[1])
                reset_context(self._tokens[0])

    @property
    def request_id(self) -> str:
        return str(self.state.fields["request_id"])

    def respond(self, response: Any, *, header: bool = True) -> Any:
        """Send the request ID back and log the terminal line (when a stream ends, if one)."""
        if header:
            settings = obs_settings
            if settings.RESPONSE_HEADER:
                set_header(response, settings.RESPONSE_HEADER, self.request_id)
            if settings.TRACE_RESPONSE_HEADER:
                fields = self.state.fields
                value = format_traceparent(fields["trace_id"], fields["span_id"], self.state.flags)
                set_header(response, settings.TRACE_RESPONSE_HEADER, value)
        if getattr(response, "streaming", False):
            stream_until_done(self, response)
        else:
            self.finish(response.status_code, response_size(response))
        return response

    def finish(self, status: int, size: int | None, exc_info: ExcInfo | None = None) -> None:
        """The one terminal line (completed or failed), then the slow warning if slow."""
        if self.finished:
            return
        self.finished = True
        duration = time.perf_counter() - self.state.started
        request = self.request
        if current()["user_id"] == EMPTY:
            user = known_user(request)
            if user is not None:
                bind_user(user)
        try:  # noqa: SIM105 (suppress() would make an object a request): django.request logs after us
            setattr(getattr(request, "_request", request), CONTEXT_ATTR, current())
        except AttributeError:
            pass
        route, view = route_of(request)
        method, path = self.state.fields["method"], self.state.fields["path"]
        observe_request(method, route, status, duration, view=view, path=path)
        if not self.state.logged:
            return
        exc_info = exc_info or getattr(request, EXC_ATTR, None)
        settings = obs_settings
        threshold = settings.SLOW_REQUEST_THRESHOLD
        slow = duration >= threshold
        failed = exc_info is not None or status >= 500
        # Tail-based sampling: every error and slow request is kept, both lines or neither.
        sampled = self.sample.end(worth_keeping=failed or slow or status >= 400)
        if sampled is None:
            count_sampled_out()
            return
        rounded = round(duration, 6)
        fields = {
            "status": status,
            "duration": rounded,
            "response_size": size,
            "route": route,
            "view": view,
        }
        if sampled:
            fields.update(sampled)
            text = None
        else:
            text = fastpath.terminal_text(status, rounded, size, route, view)
        if failed:
            error = exc_info[0].__name__ if exc_info else EMPTY
            message = messages.failed(status=status, duration=duration, error=error)
            self._emit(logging.ERROR, message, fields, exc_info, text=text)
        else:
            name = settings.CLIENT_ERROR_LEVEL if status >= 400 else settings.COMPLETED_LEVEL
            level = level_of(name) or logging.INFO
            message = messages.completed(status=status, duration=duration)
            self._emit(level, message, fields, text=text)
        if slow:
            message = messages.slow(duration=duration, threshold=threshold)
            fields = {"duration": round(duration, 6), "threshold": threshold, "status": status}
            self._emit(level_of(settings.SLOW_REQUEST_LEVEL) or logging.WARNING, message, fields)

    def _log_started(self) -> None:
        state = self.state
        settings = obs_settings
        if state.rejected_id_length:
            log_security_event(
                event_type="request_id_rejected",
                severity="warning",
                details={"header": settings.REQUEST_ID_HEADER, "length": state.rejected_id_length},
            )
        if state.incoming_id:
            seen_ids.check(state.fields["request_id"], state.fields["span_id"], _flag_reuse)
        if state.refused_trace:  # the reason only: the value is what must not be written
            log_security_event(
                event_type="traceparent_rejected",
                severity="warning",
                details={"header": "traceparent", "reason": state.refused_trace},
            )
        level = level_of(settings.STARTED_LEVEL)
        if not state.logged or level is None or not self.logger.isEnabledFor(level):
            return
        fields = state.fields
        path, extra = started_details(self.request, fields["path"])
        message = messages.started(
            username=fields.get("username", "anonymous"),
            user_id=fields.get("user_id", EMPTY),
            ip=fields["ip"],
            method=fields["method"],
            path=path,
        )
        self._emit(level, message, extra, hold=True)  # SAMPLE_RATE may hold it

    def _emit(
        self,
        level: int,
        message: str,
        fields: dict[str, Any],
        exc_info: ExcInfo | None = None,
        *,
        hold: bool = False,
        text: str | None = None,
    ) -> None:
        """Log a lifecycle line; `hold`: the started line, which sampling may hold.

        When only our own handlers would see it, the line is prepared without a LogRecord
        (observability.fastpath; `text` is its fields in the text grammar, if known);
        otherwise a record is made through the logging API. Every part was masked when
        the request was read, so the redaction filter skips the record, unless it
        carries a traceback (whose text it must mask).
        """
        logger = self.logger
        if not logger.isEnabledFor(level):
            return
        caller = sys._getframe(1)  # the lifecycle method: logging's own findCaller, cheaper
        context = current()
        handlers = None
        if exc_info is None:
            # One plan per request: its handlers do not change between its two lines.
            handlers = self._plan if self._plan is not None else fastpath.plan(logger, level)
            self._plan = handlers
        held = hold and not self.sample.by_hash
        if handlers is not None:
            shared = self._shared
            if shared is None or shared.context is not context:
                shared = self._shared = LineContext(context)
            if not held:
                fastpath.write_line(handlers, logger, level, message, shared, fields, caller, text)
                return
            line = PreparedLine(logger, level, message, shared, fields, caller, text)
            self.sample.hold(functools.partial(line.deliver, handlers))
            return
        extra = fields if exc_info is not None else {**fields, "_obs_redacted": True}
        record = logger.makeRecord(
            logger.name,
            level,
            caller.f_code.co_filename,
            caller.f_lineno,
            message,
            (),
            exc_info,
            caller.f_code.co_name,
            extra,
        )
        if not held:
            logger.handle(record)
            return
        attrs = record.__dict__
        for key, value in context.items():  # held, it may be written from another thread
            attrs.setdefault(key, value)
        self.sample.hold(functools.partial(logger.handle, record))


def _flag_reuse(first_span_id: str) -> None:
    """The request reuses an incoming ID another request (in any worker) used first."""
    log_security_event(
        event_type="request_id_reused",
        severity="warning",
        details={"header": obs_settings.REQUEST_ID_HEADER, "first_span_id": first_span_id},
    )


def set_header(response: Any, name: str, value: str) -> None:
    """`response[name] = value`, for a header name checked by the settings and a value we
    made or checked (a request ID, a traceparent: a few ASCII letters, digits and -._:).

    Django's `__setitem__` encodes and checks both for every header set (a third of what
    sending the two headers costs a request); with those checks already made, the pair
    is stored as Django stores it. Any other response object is set the usual way.
    """
    store = getattr(getattr(response, "headers", None), "_store", None)
    if type(store) is dict:
        lowered = _lowered.get(name)
        if lowered is None:
            lowered = _lowered[name] = name.lower()
        store[lowered] = (name, value)
    else:
        response[name] = value


_lowered: dict[str, str] = {}


def stream_until_done(lifecycle: RequestLifecycle, response: Any) -> None:
    """Log the terminal line when the response's stream ends, with the context bound.

    A streaming body is produced after the middleware has returned (and reset the
    context), chunk by chunk: each chunk is made with the request's context bound, and
    the stream's end (or failure) writes the terminal line with the bytes counted.
    """
    watch = _StreamWatch(lifecycle, response.status_code)
    content = response.streaming_content
    if getattr(response, "is_async", False):
        response.streaming_content = _astream(content, watch)
    else:
        response.streaming_content = _stream(content, watch)


class _StreamWatch:
    """Counts a stream's bytes, binds the request's context while a chunk is made."""

    def __init__(self, lifecycle: RequestLifecycle, status: int) -> None:
        self.lifecycle = lifecycle
        self.status = status
        self.snapshot = dict(current())
        self.size = 0

    @contextlib.contextmanager
    def fetching(self) -> Iterator[None]:
        with bound(self.snapshot):
            try:
                yield
            except BaseException as exc:
                self.end((type(exc), exc, exc.__traceback__))
                raise

    def count(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        return chunk

    def end(self, exc_info: ExcInfo | None = None) -> None:
        with bound(self.snapshot):
            self.lifecycle.finish(500 if exc_info else self.status, self.size, exc_info)


def _stream(content: Iterable[bytes], watch: _StreamWatch) -> Iterator[bytes]:
    iterator = iter(content)
    while True:
        with watch.fetching():
            chunk = next(iterator, None)
        if chunk is None:
            break
        yield watch.count(chunk)
    watch.end()


async def _astream(content: AsyncIterable[bytes], watch: _StreamWatch) -> AsyncIterator[bytes]:
    async for chunk in _fetch_each(content, watch):
        yield watch.count(chunk)
    watch.end()


async def _fetch_each(content: AsyncIterable[bytes], watch: _StreamWatch) -> AsyncIterator[bytes]:
    iterator = content.__aiter__()
    while True:
        with watch.fetching():
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
        yield chunk
