"""One exception handler, one error body shape for every error the API returns.

{"error": {"status": 400, "code": "invalid", "message": "...",
           "fields": {"amount": ["..."]}, "request_id": "..."}}
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from billing.errors import BillingError
from billing.logging_utils import log_security_event
from observability import get_request_id

SECURITY_EVENTS = {
    status.HTTP_401_UNAUTHORIZED: ("authentication_failed", "warning"),
    status.HTTP_403_FORBIDDEN: ("permission_denied", "warning"),
    status.HTTP_429_TOO_MANY_REQUESTS: ("rate_limited", "warning"),
}


def error_body(
    code: str, message: str, *, status_code: int | None = None, fields: Any = None, **extra: Any
) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if status_code is not None:
        error["status"] = status_code
    if fields:
        error["fields"] = fields
    error.update(extra)
    error["request_id"] = get_request_id()
    return {"error": error}


def _validation_body(exc: exceptions.ValidationError) -> dict:
    detail = exc.detail
    if isinstance(detail, dict):
        fields = detail
    else:
        fields = {"non_field_errors": detail if isinstance(detail, list) else [detail]}
    names = ", ".join(str(name) for name in fields)
    return error_body("invalid", f"Invalid input: {names}.", status_code=400, fields=fields)


def _billing_body(exc: BillingError) -> dict:
    extra: dict[str, Any] = {}
    if exc.data and "payment" in exc.data:
        from billing.serializers import PaymentSerializer

        extra["payment"] = PaymentSerializer(exc.data["payment"]).data
    fields = {exc.field: [exc.message]} if exc.field else None
    return error_body(exc.code, exc.message, status_code=exc.status, fields=fields, **extra)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Shape DRF's and the services' errors; unknown exceptions stay 500s (return None)."""
    if isinstance(exc, BillingError):
        return Response(_billing_body(exc), status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(exc)
    else:
        detail = getattr(exc, "detail", None)
        code = detail.code if hasattr(detail, "code") else "error"
        message = str(detail) if detail is not None else str(exc)
        if isinstance(detail, dict):  # simplejwt's token errors carry a dict
            message = str(detail.get("detail", message))
            code = str(detail.get("code", code))
        response.data = error_body(code, message, status_code=response.status_code)
    event = SECURITY_EVENTS.get(response.status_code)
    if event is not None:
        request = context.get("request")
        log_security_event(
            request=request,
            event_type=event[0],
            severity=event[1],
            details={
                "status": response.status_code,
                "code": response.data["error"]["code"],
                "attempted_endpoint": request.path if request is not None else "-",
            },
        )
    return response
