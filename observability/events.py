"""Event helpers: business events (`log_event`; the seed's `log_billing_event`), security events,
performance metrics.

Events are data: the message keeps the seed's human text, and the details are also fields
in a namespace of their own (`details`): `key=value` tokens in text files (`details.key=`
when the name is a context field's), a `details` object in JSON lines, so a detail named
`ip` never hides the client's `ip`.
"""

from __future__ import annotations

import logging
from typing import Any

from observability.masking.redaction import get_redactor
from observability.monitoring.metrics import count_security_event
from observability.output.loggers import get_logger
from observability.output.records import DETAILS_ATTR
from observability.tracing.context import EMPTY, current
from observability.tracing.request import request_fields

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
    if request is None or current()["request_id"] is not None:
        return {}
    return request_fields(request)


def _details(details: dict[str, Any] | None) -> dict[str, Any]:
    if not details:
        return {}
    masked: dict[str, Any] = get_redactor().value(dict(details))
    return masked


def log_event(
    request: Any = None,
    event_type: str = "",
    user_id: Any = None,
    details: dict[str, Any] | None = None,
) -> None:
    """`Event: invoice_sent - User: 123, Details: {...}` on the EVENTS_LOGGER: a business
    event of the host project, its type, the user, and details as data."""
    _event("Event", request, event_type, user_id, details)


def log_billing_event(
    request: Any = None,
    event_type: str = "",
    user_id: Any = None,
    details: dict[str, Any] | None = None,
) -> None:
    """The seed's helper: `Billing Event: payment_created - User: 123, Details: {...}`."""
    _event("Billing Event", request, event_type, user_id, details)


def _event(
    label: str, request: Any, event_type: str, user_id: Any, details: dict[str, Any] | None
) -> None:
    details = _details(details)
    if user_id is None:
        user_id = _request_fields(request).get("user_id", current()["user_id"])
    extra = {**_request_fields(request), "event_type": event_type, DETAILS_ATTR: details}
    if user_id is not None:
        extra["user_id"] = user_id
    shown = EMPTY if user_id is None else user_id
    get_logger("EVENTS_LOGGER").info(
        "%s: %s - User: %s, Details: %s",
        label,
        event_type,
        shown,
        details,
        extra=extra,
        stacklevel=3,  # the call site is the caller of log_event / log_billing_event
    )


def log_security_event(
    request: Any = None,
    event_type: str = "",
    severity: str = "warning",
    details: dict[str, Any] | None = None,
) -> None:
    """`Security Event: ... - Severity: ...` on the SECURITY_LOGGER, at the severity's level."""
    details = _details(details)
    severity = str(severity).lower()
    count_security_event(event_type, severity)  # before flood control: a flood still shows
    level = SEVERITY_LEVELS.get(severity, logging.WARNING)
    extra = {
        **_request_fields(request),
        "event_type": event_type,
        "severity": severity,
        DETAILS_ATTR: details,
    }
    get_logger("SECURITY_LOGGER").log(
        level,
        "Security Event: %s - Severity: %s, Details: %s",
        event_type,
        severity,
        details,
        extra=extra,
        stacklevel=2,  # the call site is the caller's
    )


def log_performance_metric(
    request: Any = None,
    metric_name: str = "",
    value: float = 0.0,
    unit: str = "seconds",
    details: dict[str, Any] | None = None,
) -> None:
    """`Performance Metric: report_generation - Value: 0.095 seconds` on the PERFORMANCE_LOGGER."""
    details = _details(details)
    extra = {
        **_request_fields(request),
        "metric_name": metric_name,
        "value": value,
        "unit": unit,
        DETAILS_ATTR: details,
    }
    shown = f"{value:.3f}" if isinstance(value, float) else value
    get_logger("PERFORMANCE_LOGGER").info(
        "Performance Metric: %s - Value: %s %s",
        metric_name,
        shown,
        unit,
        extra=extra,
        stacklevel=2,
    )
