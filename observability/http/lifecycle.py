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

import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from contextvars import Token
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from observability.compat import django_request, set_header
from observability.conf import obs_settings
from observability.events import log_security_event
from observability.http.emit import Emitter
from observability.http.reuse import check_reuse
from observability.http.sampling import excluded, sample_for
from observability.http.streaming import stream_until_done
from observability.lines import messages
from observability.monitoring.metrics import count_sampled_out, observe_request, request_started
from observability.output.loggers import get_logger, level_of
from observability.sentry import request_scope as sentry_scope
from observability.spans import queries
from observability.tracing import otel
from observability.tracing.context import (
    CONTEXT_ATTR,
    EMPTY,
    Scope,
    current,
    request_scope,
    reset_context,
    set_whole_context,
)
from observability.tracing.ids import new_ids, new_span_id
from observability.tracing.request import (
    bind_user,
    incoming_request_id,
    incoming_trace,
    known_user,
    request_context,
    response_size,
    route_of,
    started_details,
)
from observability.tracing.tracecontext import SAMPLED, format_traceparent

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Tokens = tuple[Token[Mapping[str, Any]], Token[Scope | None]]
#: Where the middleware leaves a view's exception for the failed line (Django turns it
#: into a 500 response before the middleware sees it).
EXC_ATTR = "_observability_exc_info"


@dataclass
class RequestState:
    """What the start of a request hands to its end."""

    fields: dict[str, Any]  # the request's context itself: never changed once set
    started: float
    logged: bool
    flags: str
    tracestate: str | None
    rejected_id_length: int = 0
    incoming_id: bool = False  # the client's: looked up in the IDs every worker saw
    refused_trace: str = ""  # why a valid traceparent was not adopted
    dropped_members: int = 0  # tracestate members not passed on (a card, a credential)
    parent_id: str = ""  # the adopted traceparent's parent span: looked up like an ID


def begin(request: Any) -> RequestState:
    """The request's context fields (IDs, IP, method, path) and whether it is logged.

    The trace is OpenTelemetry's active span when there is one, else the caller's
    (a trusted, valid `traceparent`), else a new one; the span is always this request's.
    """
    plain = django_request(request)
    meta = plain.META
    incoming, rejected = incoming_request_id(meta)
    request_id, trace_id, span_id = new_ids()
    if incoming is not None:
        request_id = incoming
    flags, tracestate, refused_trace, dropped_members, parent_id = SAMPLED, None, "", 0, ""
    active = otel.active_span()
    if active is not None:
        trace_id, span_id, flags = active
    else:
        parent, tracestate, refused_trace, dropped_members = incoming_trace(meta)
        if parent is not None:
            trace_id, flags = parent.trace_id, parent.flags
            # Drawn for this trace: with it, `traceresponse` must not read as a card either.
            span_id = new_span_id(trace_id)
            parent_id = parent.parent_id
    fields = request_context(request, request_id, trace_id, span_id)
    # The path the router matches: SCRIPT_NAME is a prefix a proxy (or a client) adds.
    logged = not excluded(plain.path_info)
    state = RequestState(
        fields, time.perf_counter(), logged, flags, tracestate, rejected, incoming is not None
    )
    state.refused_trace = refused_trace
    state.dropped_members = dropped_members
    state.parent_id = parent_id
    return state


#: The scopes without a tracestate, made once: (owner, flags) -> Scope.
_scopes = {
    (owner, flags): Scope(owner, flags)
    for owner in ("middleware", "decorator")
    for flags in ("00", "01")
}


class RequestLifecycle(Emitter):
    """The started line on entry, one terminal line (and a slow warning) on the way out."""

    def __init__(self, request: Any, owner: str) -> None:
        self.request = request
        self.owner = owner
        self.logger = get_logger("REQUEST_LOGGER")
        self.finished = False
        self._tokens: Tokens | None = None
        self._in_flight: Callable[[], None] | None = None  # ends its count in the metrics
        self._queries: tuple[queries.QueryLog, Token[queries.QueryLog | None]] | None = None
        self._sentry: AbstractContextManager[Any] | None = None  # its own isolation scope

    def __enter__(self) -> RequestLifecycle:
        self.state = state = begin(self.request)
        scope = _scopes.get((self.owner, state.flags)) if state.tracestate is None else None
        if scope is None:
            scope = Scope(self.owner, state.flags, state.tracestate)
        self._tokens = (set_whole_context(state.fields), request_scope.set(scope))
        self._sentry = sentry_scope(state.fields)
        self.sample = sample_for(state.fields["request_id"], self.logger, state.started)
        self._log_started()
        self._in_flight = request_started(state.fields["method"])
        self._queries = queries.begin()
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
            if self._queries is not None:
                queries.stop(self._queries[1])
            if self._tokens is not None:
                request_scope.reset(self._tokens[1])
                reset_context(self._tokens[0])
            if self._sentry is not None:
                self._sentry.__exit__(None, None, None)

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
            stream_until_done(response, dict(current()), self.finish)
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
        if current()["user_id"] is None:
            user = known_user(request)
            if user is not None:
                bind_user(user)
        plain = django_request(request)
        try:  # noqa: SIM105 (suppress() would make an object a request): django.request logs after us
            setattr(plain, CONTEXT_ATTR, current())
        except AttributeError:
            pass
        route, view = route_of(request)
        method, path = self.state.fields["method"], self.state.fields["path"]
        observe_request(method, route, status, duration, view=view, path=path)
        if not self.state.logged:
            return
        exc_info = exc_info or getattr(plain, EXC_ATTR, None)
        # The repeated query warnings are written whether or not the lines are sampled.
        db_fields = queries.end(self._queries[0]) if self._queries is not None else None
        settings = obs_settings
        threshold = settings.SLOW_REQUEST_THRESHOLD
        slow = duration >= threshold
        failed = exc_info is not None or status >= 500
        # Tail-based sampling: every error and slow request is kept, both lines or neither.
        sampled = self.sample.end(worth_keeping=failed or slow or status >= 400)
        if sampled is None:
            count_sampled_out()
            return
        fields = {
            "status": status,
            "duration": round(duration, 6),
            "response_size": size,
            "route": None if route == EMPTY else route,  # no pattern matched (a 404)
            "view": None if view == EMPTY else view,
        }
        if db_fields:  # appended: the seed's fields keep their places
            fields.update(db_fields)
        if sampled:
            fields.update(sampled)
        emit = self.emit
        if failed:
            error = exc_info[0].__name__ if exc_info else None
            message = messages.failed(status=status, duration=duration, error=error or EMPTY)
            emit(logging.ERROR, message, fields, exc_info)
        else:
            name = settings.CLIENT_ERROR_LEVEL if status >= 400 else settings.COMPLETED_LEVEL
            level = level_of(name) or logging.INFO
            emit(level, messages.completed(status=status, duration=duration), fields)
        if slow:
            message = messages.slow(duration=duration, threshold=threshold)
            fields = {"duration": round(duration, 6), "threshold": threshold, "status": status}
            emit(level_of(settings.SLOW_REQUEST_LEVEL) or logging.WARNING, message, fields)

    def _log_started(self) -> None:
        state = self.state
        settings = obs_settings
        if state.rejected_id_length:
            log_security_event(
                event_type="request_id_rejected",
                severity="warning",
                details={"header": settings.REQUEST_ID_HEADER, "length": state.rejected_id_length},
            )
        if state.incoming_id or state.parent_id:
            check_reuse(self.request, state.fields, state.incoming_id, state.parent_id)
        if state.refused_trace:  # the reason only: the value is what must not be written
            log_security_event(
                event_type="traceparent_rejected",
                severity="warning",
                details={"header": "traceparent", "reason": state.refused_trace},
            )
        if state.dropped_members:  # how many, never what
            log_security_event(
                event_type="tracestate_member_dropped",
                severity="warning",
                details={"header": "tracestate", "members": state.dropped_members},
            )
        level = level_of(settings.STARTED_LEVEL)
        if not state.logged or level is None or not self.logger.isEnabledFor(level):
            return
        fields = state.fields
        path, extra = started_details(self.request, fields["path"])
        user_id = fields.get("user_id")
        message = messages.started(
            username=fields.get("username") or "anonymous",
            user_id=EMPTY if user_id is None else user_id,
            ip=fields["ip"],
            method=fields["method"],
            path=path,
        )
        self.emit(level, message, extra, hold=True)  # SAMPLE_RATE may hold it
