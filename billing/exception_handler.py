"""One exception handler, one error body shape for every error the API returns, and
Django's error views (handler400, handler403, handler404, handler500) answering with it.

{"error": {"status": 400, "code": "invalid", "message": "...",
           "fields": {"amount": ["..."]}, "request_id": "..."}}
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from billing.exceptions import BillingError
from billing.logging_utils import log_security_event
from observability import get_request_id

logger = logging.getLogger("billing.exception_handler")

# PostgreSQL refused the transaction because of a concurrent one: retrying it can succeed.
# https://www.postgresql.org/docs/current/errcodes-appendix.html
RETRYABLE_SQLSTATES = {"40001": "serialization failure", "40P01": "deadlock detected"}
# SQLite reports bad SQL as OperationalError too: only these primary result codes mean the
# database (not the query) failed: BUSY, LOCKED, IOERR, FULL, CANTOPEN.
# https://www.sqlite.org/rescode.html
SQLITE_UNAVAILABLE_CODES = frozenset({5, 6, 10, 13, 14})
DATABASE_CONFLICT = (
    409,
    "database_conflict",
    "A concurrent request changed the same data and the database refused this one; retry it.",
)
DATABASE_UNAVAILABLE = (
    503,
    "database_unavailable",
    "The database is unavailable; retry in a moment.",
)

SECURITY_EVENTS = {
    status.HTTP_401_UNAUTHORIZED: ("authentication_failed", "warning"),
    status.HTTP_403_FORBIDDEN: ("permission_denied", "warning"),
    status.HTTP_429_TOO_MANY_REQUESTS: ("rate_limited", "warning"),
}


def error_body(
    code: str, message: str, *, status_code: int | None = None, fields: Any = None, **extra: Any
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if status_code is not None:
        error["status"] = status_code
    if fields:
        error["fields"] = fields
    error.update(extra)
    error["request_id"] = get_request_id()
    return {"error": error}


def _validation_body(exc: exceptions.ValidationError) -> dict[str, Any]:
    detail = exc.detail
    if isinstance(detail, dict):
        fields = detail
    else:
        fields = {"non_field_errors": detail if isinstance(detail, list) else [detail]}
    names = ", ".join(str(name) for name in fields)
    return error_body("invalid", f"Invalid input: {names}.", status_code=400, fields=fields)


def _billing_body(exc: BillingError) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if exc.data and "payment" in exc.data:
        from billing.serializers import PaymentSerializer

        extra["payment"] = PaymentSerializer(exc.data["payment"]).data
    fields = {exc.field: [exc.message]} if exc.field else None
    return error_body(exc.code, exc.message, status_code=exc.status, fields=fields, **extra)


def database_error(exc: BaseException | None) -> tuple[int, str, str] | None:
    """(status, code, message) for a database that failed us, None for anything else.

    A serialization failure or a deadlock is a 409 (retry); a connection refused, lost or
    timed out, a server shutting down, or a SQLite file locked past its timeout or not
    openable, is a 503. Any other database error (a bad query, an integrity error nobody
    caught) is a bug and stays a 500.
    """
    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return DATABASE_CONFLICT
    if isinstance(cause, sqlite3.Error):
        code = getattr(cause, "sqlite_errorcode", None)
        if code is None or code & 0xFF not in SQLITE_UNAVAILABLE_CODES:
            return None
    return DATABASE_UNAVAILABLE


def log_database_error(exc: BaseException, status_code: int) -> None:
    """One ERROR record with the traceback; the observability filters add the request."""
    cause = exc.__cause__ or exc
    logger.error(
        "Database error answered with %s: %s.%s",
        status_code,
        type(cause).__module__,
        type(cause).__qualname__,
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"status": status_code, "sqlstate": getattr(cause, "sqlstate", None) or "-"},
    )


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Shape DRF's and the services' errors; unknown exceptions stay 500s (return None)."""
    if isinstance(exc, BillingError):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        if isinstance(exc.data, dict) and exc.data.get("replayed"):
            headers = {**(headers or {}), "Idempotent-Replayed": "true"}
        return Response(_billing_body(exc), status=exc.status, headers=headers)
    failure = database_error(exc)
    if failure is not None:
        status_code, code, message = failure
        log_database_error(exc, status_code)
        set_rollback()
        return Response(
            error_body(code, message, status_code=status_code),
            status=status_code,
            headers={"Retry-After": "1"},
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(exc)
    else:
        detail = getattr(exc, "detail", None)
        code = getattr(detail, "code", "error")
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


# --- Django's error views (config/urls.py's handler400..handler500): the same body ----------


def _error_view(
    status_code: int, code: str, message: str
) -> Callable[[HttpRequest, Exception | None], JsonResponse]:
    def view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
        return JsonResponse(error_body(code, message, status_code=status_code), status=status_code)

    return view


bad_request = _error_view(400, "bad_request", "The request could not be understood.")
permission_denied = _error_view(403, "permission_denied", "You may not do this.")
not_found = _error_view(404, "not_found", "No such resource.")


def server_error(request: HttpRequest) -> JsonResponse:
    """handler500: a database that failed us is a 503/409 here too, outside DRF's views.

    Django calls it while handling the exception, so sys.exc_info() holds it; Django's
    `django.request` record then logs it once, with the traceback.
    """
    failure = database_error(sys.exc_info()[1])
    if failure is None:
        failure = (500, "server_error", "Internal server error.")
    status_code, code, message = failure
    headers = {"Retry-After": "1"} if status_code != 500 else None
    return JsonResponse(
        error_body(code, message, status_code=status_code), status=status_code, headers=headers
    )
