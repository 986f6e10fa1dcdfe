"""Request tracing and logging for Django: correlation IDs, context in every record, safe files.

Public names are re-exported here; see the README for the settings and the file layout.
They are imported when first used (PEP 562), so that importing one module of the package
(`observability.logconfig` from a settings file, `logtrace`'s reader) does not load the
request machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from observability.background.tasks import log_published, new_task_id, task_headers
    from observability.decorators import (
        log_api_request,
    )
    from observability.events import (
        log_billing_event,
        log_event,
        log_performance_metric,
        log_security_event,
    )
    from observability.filters import (
        RedactionFilter,
        RequestContextFilter,
    )
    from observability.logconfig import (
        build_logging,
    )
    from observability.masking.escaping import escape
    from observability.masking.percent import holds_card
    from observability.masking.redaction import get_redactor
    from observability.output.loggers import (
        api_logger,
        app_logger,
        billing_logger,
        events_logger,
        performance_logger,
        security_logger,
    )
    from observability.output.writer import (
        flush_logs,
        log_stats,
    )
    from observability.spans.span import span
    from observability.structured import (
        StructuredLogger,
    )
    from observability.tracing.context import (
        CONTEXT_FIELDS,
        bind,
        carry_context,
        get_context,
        get_request_id,
        request_context,
    )
    from observability.tracing.request import (
        bind_user,
        client_address_of,
    )
    from observability.tracing.tracecontext import (
        outgoing_headers,
    )

_HOMES = {
    "span": "spans.span",
    "log_published": "background.tasks",
    "new_task_id": "background.tasks",
    "task_headers": "background.tasks",
    "escape": "masking.escaping",
    "get_redactor": "masking.redaction",
    "holds_card": "masking.percent",
    "CONTEXT_FIELDS": "tracing.context",
    "bind": "tracing.context",
    "carry_context": "tracing.context",
    "get_context": "tracing.context",
    "get_request_id": "tracing.context",
    "request_context": "tracing.context",
    "log_api_request": "decorators",
    "log_billing_event": "events",
    "log_event": "events",
    "log_performance_metric": "events",
    "log_security_event": "events",
    "RedactionFilter": "filters",
    "RequestContextFilter": "filters",
    "build_logging": "logconfig",
    "api_logger": "output.loggers",
    "app_logger": "output.loggers",
    "billing_logger": "output.loggers",
    "events_logger": "output.loggers",
    "performance_logger": "output.loggers",
    "security_logger": "output.loggers",
    "bind_user": "tracing.request",
    "client_address_of": "tracing.request",
    "StructuredLogger": "structured",
    "outgoing_headers": "tracing.tracecontext",
    "flush_logs": "output.writer",
    "log_stats": "output.writer",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        msg = f"module 'observability' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f"observability.{home}"), name)
    globals()[name] = value
    return value


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
    "escape",
    "events_logger",
    "flush_logs",
    "get_context",
    "get_redactor",
    "get_request_id",
    "holds_card",
    "log_api_request",
    "log_billing_event",
    "log_event",
    "log_performance_metric",
    "log_published",
    "log_security_event",
    "log_stats",
    "new_task_id",
    "outgoing_headers",
    "performance_logger",
    "request_context",
    "security_logger",
    "span",
    "task_headers",
]
