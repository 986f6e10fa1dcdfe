"""W3C Trace Context: read `traceparent`/`tracestate`, answer `traceresponse`, propagate.

An incoming `traceparent` is validated as the W3C recommendation and OpenTelemetry's
parser do: lower-case hex, `version-traceid-parentid-flags`, trace ID and parent ID not
all zeros, version `ff` invalid, version `00` with anything after the flags invalid, a
later version's extra fields ignored, blanks (space, tab) around it allowed, at most 512
characters looked at. Anything else is ignored and a fresh trace starts. `tracestate` is
kept as it came (when it is printable ASCII of at most 512 characters) and passed on.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from observability.conf import obs_settings
from observability.tracing import otel
from observability.tracing.context import current, request_scope
from observability.tracing.ids import new_span_id

MAX_LENGTH = 512
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_TRACESTATE = re.compile(r"[\x20-\x7e]*")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
SAMPLED = "01"


class TraceParent(NamedTuple):
    """A valid incoming traceparent: the caller's trace, its span, its flags."""

    trace_id: str
    parent_id: str
    flags: str


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The trace a valid `traceparent` header names; None when absent or invalid."""
    if not value or len(value) > MAX_LENGTH:
        return None
    match = _TRACEPARENT.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return TraceParent(trace_id, parent_id, flags)


def valid_tracestate(value: str | None) -> str | None:
    """`tracestate` as it came, if it is printable ASCII of at most 512 characters."""
    if not value or len(value) > MAX_LENGTH or _TRACESTATE.fullmatch(value) is None:
        return None
    return value


def format_traceparent(trace_id: str, span_id: str, flags: str = SAMPLED) -> str:
    return f"00-{trace_id}-{span_id}-{flags}"


def current_flags() -> str:
    """The current request's trace flags ("01", sampled, outside a request)."""
    scope = request_scope.get()
    return scope.flags if scope is not None else SAMPLED


def outgoing_headers() -> dict[str, str]:
    """The headers for a call made inside the current request (or request_context()).

    `X-Request-ID` (the request's ID), a `traceparent` with this trace's ID and a new
    child span ID (or, when an OpenTelemetry span is active, that span as the parent, as
    OpenTelemetry's own propagator does), and `tracestate` when the request brought one.
    Outside any request: no headers.
    """
    context = current()
    headers: dict[str, str] = {}
    request_id = context["request_id"]
    if request_id is not None:
        headers[obs_settings.REQUEST_ID_HEADER] = str(request_id)
    active = otel.active_span()
    if active is not None:
        headers["traceparent"] = format_traceparent(*active)
    elif context["trace_id"] is not None:
        headers["traceparent"] = format_traceparent(
            str(context["trace_id"]), new_span_id(str(context["trace_id"])), current_flags()
        )
    scope = request_scope.get()
    if scope is not None and scope.tracestate and "traceparent" in headers:
        headers["tracestate"] = scope.tracestate
    return headers
