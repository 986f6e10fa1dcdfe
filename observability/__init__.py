"""Request tracing and logging for Django: correlation IDs, context in every record, safe files.

Public names are re-exported here; see the README for the settings and the file layout.
"""

from observability.decorators import log_api_request
from observability.events import (
    log_billing_event,
    log_event,
    log_performance_metric,
    log_security_event,
)
from observability.filters import RedactionFilter, RequestContextFilter
from observability.logconfig import build_logging
from observability.masking.redaction import get_redactor
from observability.output.loggers import (
    api_logger,
    app_logger,
    billing_logger,
    events_logger,
    performance_logger,
    security_logger,
)
from observability.output.writer import flush_logs, log_stats
from observability.structured import StructuredLogger
from observability.tasks import log_published, task_headers
from observability.tracing.context import (
    CONTEXT_FIELDS,
    bind,
    carry_context,
    get_context,
    get_request_id,
    request_context,
)
from observability.tracing.request import bind_user, client_address_of
from observability.tracing.tracecontext import outgoing_headers

__all__ = [
    "CONTEXT_FIELDS",
    "RedactionFilter",
    "RequestContextFilter",
    "StructuredLogger",
    "api_logger",
    "app_logger",
    "billing_logger",
    "bind",
    "bind_user",
    "build_logging",
    "carry_context",
    "client_address_of",
    "events_logger",
    "flush_logs",
    "get_context",
    "get_redactor",
    "get_request_id",
    "log_api_request",
    "log_billing_event",
    "log_event",
    "log_performance_metric",
    "log_published",
    "log_security_event",
    "log_stats",
    "outgoing_headers",
    "performance_logger",
    "request_context",
    "security_logger",
    "task_headers",
]
