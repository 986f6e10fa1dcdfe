"""The seed's event helpers, StructuredLogger and pre-configured loggers.

Events are data: the message keeps the seed's human text, and every detail is also a
field of its own (a `key=value` token in text files, a key in JSON lines).
"""

from __future__ import annotations

import logging
from typing import Any

from observability.conf import obs_settings
from observability.context import EMPTY, current
from observability.filters import get_redactor
from observability.records import safe_extra
from observability.request import request_fields

billing_logger = logging.getLogger("billing")
api_logger = logging.getLogger("billing.api")
security_logger = logging.getLogger("billing.security")
performance_logger = logging.getLogger("billing.performance")
events_logger = logging.getLogger("billing.events")

SEVERITY_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "low": logging.INFO,
    "warning": logging.WARNING,
    "medium": logging.WARNING,
    "error": logging.ERROR,
    "high": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _request_fields(request: Any) -> dict[str, Any]:
    """Context fields from a request, when the helper runs outside the middleware's request."""
    if request is None or current()["request_id"] != EMPTY:
        return {}
    return request_fields(request)


def _details(details: dict[str, Any] | None) -> dict[str, Any]:
    if not details:
        return {}
    return get_redactor().value(dict(details))


def log_billing_event(
    request: Any = None,
    event_type: str = "",
    user_id: Any = None,
    details: dict[str, Any] | None = None,
) -> None:
    """`Billing Event: payment_created - User: 123, Details: {...}` on billing.events."""
    details = _details(details)
    if user_id is None:
        user_id = _request_fields(request).get("user_id", current()["user_id"])
    extra = {**_request_fields(request), **safe_extra(details), "event_type": event_type}
    extra["user_id"] = user_id
    events_logger.info(
        "Billing Event: %s - User: %s, Details: %s", event_type, user_id, details, extra=extra
    )


def log_security_event(
    request: Any = None,
    event_type: str = "",
    severity: str = "warning",
    details: dict[str, Any] | None = None,
) -> None:
    """`Security Event: ... - Severity: ...` on billing.security, at the severity's level."""
    details = _details(details)
    severity = str(severity).lower()
    level = SEVERITY_LEVELS.get(severity, logging.WARNING)
    extra = {
        **_request_fields(request),
        **safe_extra(details),
        "event_type": event_type,
        "severity": severity,
    }
    logging.getLogger(obs_settings.SECURITY_LOGGER).log(
        level,
        "Security Event: %s - Severity: %s, Details: %s",
        event_type,
        severity,
        details,
        extra=extra,
    )


def log_performance_metric(
    request: Any = None,
    metric_name: str = "",
    value: float = 0.0,
    unit: str = "seconds",
    details: dict[str, Any] | None = None,
) -> None:
    """`Performance Metric: report_generation - Value: 0.095 seconds` on billing.performance."""
    details = _details(details)
    extra = {
        **_request_fields(request),
        **safe_extra(details),
        "metric_name": metric_name,
        "value": value,
        "unit": unit,
    }
    shown = f"{value:.3f}" if isinstance(value, float) else value
    performance_logger.info(
        "Performance Metric: %s - Value: %s %s", metric_name, shown, unit, extra=extra
    )


class StructuredLogger:
    """A logger whose calls take a dict of fields: `logger.info("Refund done", {"id": 1})`."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)
        self.name = name

    def _log(self, level: int, message: str, fields: dict[str, Any] | None, exc_info: Any) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(
                level, message, extra=safe_extra(fields), exc_info=exc_info, stacklevel=3
            )

    def debug(self, message: str, fields: dict[str, Any] | None = None, exc_info: Any = False):
        self._log(logging.DEBUG, message, fields, exc_info)

    def info(self, message: str, fields: dict[str, Any] | None = None, exc_info: Any = False):
        self._log(logging.INFO, message, fields, exc_info)

    def warning(self, message: str, fields: dict[str, Any] | None = None, exc_info: Any = False):
        self._log(logging.WARNING, message, fields, exc_info)

    def error(self, message: str, fields: dict[str, Any] | None = None, exc_info: Any = False):
        self._log(logging.ERROR, message, fields, exc_info)

    def critical(self, message: str, fields: dict[str, Any] | None = None, exc_info: Any = False):
        self._log(logging.CRITICAL, message, fields, exc_info)
