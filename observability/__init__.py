"""Request tracing and logging for Django: correlation IDs, context in every record, safe files.

Public names are re-exported here; see the README for the settings and the file layout.
"""

from observability.context import (
    CONTEXT_FIELDS,
    bind,
    carry_context,
    get_context,
    get_request_id,
    request_context,
)
from observability.decorators import log_api_request
from observability.events import log_billing_event, log_performance_metric, log_security_event
from observability.filters import RedactionFilter, RequestContextFilter
from observability.logconfig import build_logging
from observability.loggers import (
    api_logger,
    billing_logger,
    events_logger,
    performance_logger,
    security_logger,
)
from observability.request import bind_user
from observability.spans import span
from observability.structured import StructuredLogger
from observability.tracecontext import outgoing_headers
from observability.writer import flush_logs, log_stats

__all__ = [
    "CONTEXT_FIELDS",
    "RedactionFilter",
    "RequestContextFilter",
    "StructuredLogger",
    "api_logger",
    "billing_logger",
    "bind",
    "bind_user",
    "build_logging",
    "carry_context",
    "events_logger",
    "flush_logs",
    "get_context",
    "get_request_id",
    "log_api_request",
    "log_billing_event",
    "log_performance_metric",
    "log_security_event",
    "log_stats",
    "outgoing_headers",
    "performance_logger",
    "request_context",
    "security_logger",
    "span",
]
