"""A request's lifecycle lines, shared by the middleware and the @log_api_request decorator.

API Request started - User: john_doe (ID: 123), IP: 192.168.1.100, Method: POST, Path: ...
API Request completed - Status: 201, Duration: 0.102 seconds
API Request failed - Status: 500, Duration: 0.004 seconds, Error: ValueError
Slow API request detected - Duration: 1.877 seconds (threshold 1.0 seconds)
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from contextvars import Token
from dataclasses import dataclass
from typing import Any

from observability.conf import obs_settings
from observability.context import (
    CONTEXT_ATTR,
    EMPTY,
    bind_user,
    current,
    lifecycle_owner,
    reset_context,
    set_context,
)
from observability.events import log_security_event
from observability.ids import new_ids, recent_ids
from observability.request import (
    incoming_request_id,
    known_user,
    request_fields,
    started_details,
)


@dataclass
class RequestState:
    """What the start of a request hands to its end."""

    fields: dict[str, Any]
    started: float
    logged: bool
    rejected_id_length: int = 0
    reused_id: bool = False
    exc_info: Any = None


def begin(request: Any) -> RequestState:
    """Build the request's context fields (IDs, IP, method, path) and decide if it is logged."""
    django_request = getattr(request, "_request", request)
    incoming, rejected = incoming_request_id(django_request.META)
    request_id, trace_id, span_id = new_ids()
    reused = False
    if incoming is not None:
        request_id = incoming
        reused = recent_ids.seen(incoming)
    fields = {"request_id": request_id, "trace_id": trace_id, "span_id": span_id}
    fields.update(request_fields(request))
    logged = not django_request.path.startswith(obs_settings.EXCLUDE_PATHS)
    return RequestState(fields, time.perf_counter(), logged, rejected, reused)


def enter(request: Any, owner: str) -> tuple[RequestState, logging.Logger, tuple[Token, Token]]:
    """Start a request: its context, who owns its lifecycle, its started line.

    The caller resets the returned tokens with leave() in `finally` of the same call.
    """
    state = begin(request)
    tokens = (set_context(state.fields), lifecycle_owner.set(owner))
    logger = request_logger()
    log_started(logger, request, state)
    return state, logger, tokens


def leave(tokens: tuple[Token, Token]) -> None:
    lifecycle_owner.reset(tokens[1])
    reset_context(tokens[0])


_loggers: dict[str, logging.Logger] = {}


def request_logger() -> logging.Logger:
    """The REQUEST_LOGGER (cached: logging.getLogger takes logging's module lock)."""
    name = obs_settings.REQUEST_LOGGER
    logger = _loggers.get(name)
    if logger is None:
        logger = _loggers[name] = logging.getLogger(name)
    return logger


def log_started(logger: logging.Logger, request: Any, state: RequestState) -> None:
    settings = obs_settings
    if state.rejected_id_length:
        log_security_event(
            event_type="request_id_rejected",
            severity="warning",
            details={"header": settings.REQUEST_ID_HEADER, "length": state.rejected_id_length},
        )
    if state.reused_id:
        log_security_event(
            event_type="request_id_reused",
            severity="warning",
            details={"header": settings.REQUEST_ID_HEADER},
        )
    if not state.logged or not logger.isEnabledFor(logging.INFO):
        return
    fields = state.fields
    path, extra = started_details(request, fields["path"])
    username = fields.get("username", "anonymous")
    message = (
        f"API Request started - User: {username} (ID: {fields.get('user_id', EMPTY)}), "
        f"IP: {fields['ip']}, Method: {fields['method']}, Path: {path}"
    )
    _emit(logger, logging.INFO, message, extra)


def _emit(
    logger: logging.Logger, level: int, message: str, extra: dict[str, Any], exc_info: Any = None
) -> None:
    """Log a lifecycle line whose every part was redacted above, skipping work it does not need.

    `logger.info()` would look up the caller's frame (findCaller) and the redaction filter
    would scan the message again; a lifecycle line needs neither. A line with a traceback
    still goes through the redaction filter, for the exception's text.
    """
    if not logger.isEnabledFor(level):
        return
    if exc_info is None and logging.getLogRecordFactory() is logging.LogRecord:
        record = _lifecycle_record(logger, level, message, extra)
    else:
        record = logger.makeRecord(
            logger.name, level, __file__, 0, message, None, exc_info, "request", extra
        )
    logger.handle(record)


_prototypes: dict[tuple[str, int], dict[str, Any]] = {}


def _lifecycle_record(
    logger: logging.Logger, level: int, message: str, extra: dict[str, Any]
) -> logging.LogRecord:
    """A LogRecord for a lifecycle line, copied from a prototype made by logging itself.

    Inside a request, LogRecord.__init__ costs ~20 µs here (paths, thread and process
    look-ups that never change for these lines); copying a prototype and setting the time,
    thread and message costs a fraction. Any custom record factory gets makeRecord instead.
    """
    key = (logger.name, level)
    prototype = _prototypes.get(key)
    if prototype is None or prototype.get("process") != os.getpid():
        made = logger.makeRecord(logger.name, level, __file__, 0, "", None, None, "request")
        prototype = _prototypes[key] = dict(made.__dict__)
    record = logging.LogRecord.__new__(logging.LogRecord)
    attrs = record.__dict__
    attrs.update(prototype)
    now = time.time()
    attrs["created"] = now
    attrs["msecs"] = int((now - int(now)) * 1000) + 0.0
    attrs["relativeCreated"] = (now - _LOGGING_START) * 1000
    if logging.logThreads:
        attrs["thread"] = threading.get_ident()
        attrs["threadName"] = threading.current_thread().name
    attrs["msg"] = message
    attrs["_obs_redacted"] = True  # every part was redacted above
    attrs.update(extra)
    return record


_LOGGING_START = getattr(logging, "_startTime", time.time())


def log_finished(
    logger: logging.Logger,
    request: Any,
    state: RequestState,
    status: int,
    size: int | None,
    exc_info: Any = None,
) -> None:
    """The one terminal line (completed or failed), then the slow warning if it was slow."""
    duration = time.perf_counter() - state.started
    if current()["user_id"] == EMPTY:
        user = known_user(request)
        if user is not None:
            bind_user(user)
    with contextlib.suppress(AttributeError):
        setattr(getattr(request, "_request", request), CONTEXT_ATTR, current())
    if not state.logged:
        return
    exc_info = exc_info or state.exc_info
    extra = {"status": status, "duration": round(duration, 6), "response_size": size}
    if exc_info is not None or status >= 500:
        error = exc_info[0].__name__ if exc_info else "-"
        message = (
            f"API Request failed - Status: {status}, Duration: {duration:.3f} seconds, "
            f"Error: {error}"
        )
        _emit(logger, logging.ERROR, message, extra, exc_info)
    else:
        level = logging.INFO
        if status >= 400:
            level = logging.getLevelName(obs_settings.CLIENT_ERROR_LEVEL)
        message = f"API Request completed - Status: {status}, Duration: {duration:.3f} seconds"
        _emit(logger, level, message, extra)
    threshold = obs_settings.SLOW_REQUEST_THRESHOLD
    if duration >= threshold:
        message = (
            f"Slow API request detected - Duration: {duration:.3f} seconds "
            f"(threshold {threshold} seconds)"
        )
        extra = {"duration": round(duration, 6), "threshold": threshold, "status": status}
        _emit(logger, logging.WARNING, message, extra)
