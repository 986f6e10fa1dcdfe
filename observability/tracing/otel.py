"""OpenTelemetry, when it is installed: its active span, and the record attributes it names.

Nothing here needs the SDK: the API package (`opentelemetry-api`) is enough, and without it
every function answers as if no span were active. When a valid span is active for the
request (e.g. opentelemetry-instrumentation-django runs), the request adopts its trace
and span IDs, and every record also carries the attributes OpenTelemetry's
`LoggingInstrumentor` sets (`otelTraceID`, `otelSpanID`, `otelTraceSampled`,
`otelServiceName`), so log formats written for OpenTelemetry keep working.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from observability.compat import set_tracer_provider_of

try:
    from opentelemetry import context as _context
    from opentelemetry import trace as _trace
except ImportError:  # the optional extra `otel` is not installed
    _trace = None  # type: ignore[assignment]
    _context = None  # type: ignore[assignment]

INSTALLED = _trace is not None
#: The attributes LoggingInstrumentor puts on records, in its names.
RECORD_ATTRS = ("otelTraceID", "otelSpanID", "otelTraceSampled", "otelServiceName")


def active_span() -> tuple[str, str, str] | None:
    """(trace ID, span ID, flags) of the active OpenTelemetry span, in hex; None if none."""
    if _trace is None:
        return None
    current = _context.get_current()
    if not current:  # no OpenTelemetry context at all (every request without its SDK)
        return None
    context = _trace.get_current_span(current).get_span_context()
    if not context.is_valid:
        return None
    return (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
        format(int(context.trace_flags), "02x"),
    )


def service_name() -> str:
    """The service name OpenTelemetry reports: its resource's, else OTEL_SERVICE_NAME."""
    if _trace is None:
        return _provider_service_name(None)
    provider: Any = set_tracer_provider_of(_trace)
    if provider is None and not _asked:
        # Once: a provider the environment names (OTEL_PYTHON_TRACER_PROVIDER) is loaded
        # by this call; until one is set, the stand-in's name is OTEL_SERVICE_NAME's.
        _asked.append(True)
        provider = _trace.get_tracer_provider()
    return _provider_service_name(provider)


_asked: list[bool] = []  # get_tracer_provider() was called once (it reads os.environ)


@functools.lru_cache(maxsize=4)
def _provider_service_name(provider: Any) -> str:
    resource = getattr(provider, "resource", None)
    attributes = getattr(resource, "attributes", None) or {}
    return str(attributes.get("service.name") or os.environ.get("OTEL_SERVICE_NAME", ""))


_last: tuple[tuple[str, str, str], dict[str, Any]] = (("", "", ""), {})


def record_attrs(trace_id: str, span_id: str, flags: str) -> dict[str, Any]:
    """LoggingInstrumentor's attributes for a record of this trace ("0" when none).

    A request's records share them: the last answer is kept and handed out again.
    """
    global _last
    key = (trace_id, span_id, flags)
    last_key, attrs = _last
    if key == last_key:
        return attrs
    attrs = {
        "otelTraceID": trace_id if trace_id != "-" else "0",
        "otelSpanID": span_id if span_id != "-" else "0",
        "otelTraceSampled": trace_id != "-" and int(flags, 16) & 1 == 1,
        "otelServiceName": service_name(),
    }
    _last = (key, attrs)
    return attrs
