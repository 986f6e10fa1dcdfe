"""W3C Trace Context: read `traceparent`/`tracestate`, answer `traceresponse`, propagate.

An incoming `traceparent` is validated as the W3C recommendation and OpenTelemetry's
parser do: lower-case hex, `version-traceid-parentid-flags`, trace ID and parent ID not
all zeros, version `ff` invalid, version `00` with anything after the flags invalid, a
later version's extra fields ignored, blanks (space, tab) around it allowed, at most 512
characters looked at. Anything else is ignored and a fresh trace starts.

`tracestate` is read by the W3C grammar as OpenTelemetry's parser reads it: list members
`key=value` separated by commas (blanks around them allowed, empty ones skipped), each key
and value by the recommendation's rules, no key twice, at most 32 members and 512
characters; a header that breaks any rule is dropped whole. A member whose value the
masker would change (a card number, a JWT, a credential) is dropped on its own: what we
pass on to the next service never carries what we would not write. The members kept are
passed on, joined by commas.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from observability.conf import obs_settings
from observability.masking.redaction import get_redactor
from observability.tracing import otel
from observability.tracing.context import current, request_scope
from observability.tracing.ids import new_span_id

MAX_LENGTH = 512
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_TRACESTATE_MEMBER = re.compile(
    r"([a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})"
    r"=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])"
)
MAX_TRACESTATE_MEMBERS = 32
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


def read_tracestate(value: str | None) -> tuple[str | None, int]:
    """The members of a valid `tracestate` to pass on (None when none), and how many
    valid members were dropped because the masker would change their value."""
    if not value or len(value) > MAX_LENGTH:
        return None, 0
    members: dict[str, str] = {}
    for member in value.split(","):
        member = member.strip(" \t")
        if not member:
            continue
        match = _TRACESTATE_MEMBER.fullmatch(member)
        if match is None or match[1] in members or len(members) == MAX_TRACESTATE_MEMBERS:
            return None, 0
        members[match[1]] = match[2]
    redactor = get_redactor()
    kept = [f"{key}={text}" for key, text in members.items() if redactor.text(text) == text]
    return (",".join(kept) or None), len(members) - len(kept)


def valid_tracestate(value: str | None) -> str | None:
    """The `tracestate` to pass on: its valid members without a secret, or None."""
    return read_tracestate(value)[0]


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
