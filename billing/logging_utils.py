"""The seed's import surface: `from billing.logging_utils import ...` works verbatim.

Everything lives in the reusable `observability` app; this module only re-exports it.
"""

from observability import (
    StructuredLogger,
    api_logger,
    billing_logger,
    events_logger,
    log_api_request,
    log_billing_event,
    log_performance_metric,
    log_security_event,
    performance_logger,
    security_logger,
)

__all__ = [
    "StructuredLogger",
    "api_logger",
    "billing_logger",
    "events_logger",
    "log_api_request",
    "log_billing_event",
    "log_performance_metric",
    "log_security_event",
    "performance_logger",
    "security_logger",
]
