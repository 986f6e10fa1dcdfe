"""Logging filters: attach them to handlers (a logger's filter misses propagated records)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

from observability.guard.flood import DECISION_ATTR, guard
from observability.masking.escaping import ARG_LIMIT, cap
from observability.masking.redaction import NullRedactor, Redactor, get_redactor
from observability.output.records import CONTEXT_SNAPSHOT_ATTR, GIVEN_ATTR, extra_keys
from observability.tracing import otel
from observability.tracing.context import CONTEXT_ATTR, EMPTY, current
from observability.tracing.tracecontext import current_flags


class FloodFilter(logging.Filter):
    """Flood control where records are written: first on every handler build_logging() makes.

    Records of guarded loggers are decided by the guard as a logger filter, before any
    handler; this one decides for a record that no logger filter saw (its logger was made
    since the writer's last tick) and, with `security=True` (the security file's handler),
    for any record that reaches it. Either way a record is counted once: the decision is
    kept on it and every handler applies it. Lifecycle lines (REQUEST_LOGGER) always pass.
    """

    def __init__(self, security: bool = False) -> None:
        super().__init__()
        self.security = security

    def filter(self, record: logging.LogRecord) -> bool:
        attrs = record.__dict__
        decided = attrs.get(DECISION_ATTR)
        if decided is not None:
            return bool(decided)
        if not self.security and guard.kinds.get(record.name, False) is None:
            return True  # the usual record: of a logger that is not guarded
        return guard.at_handler(record, self.security)


class RequestContextFilter(logging.Filter):
    """Copy the request context onto every record; a field given in `extra` wins.

    An absent value is written "-" on the record (a user's `%(user_id)s` never fails); the
    snapshot itself is kept on the record for our formatters (observability.lines.line).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        attrs = record.__dict__
        if CONTEXT_SNAPSHOT_ATTR in attrs:
            return True  # another of our handlers has seen it (or it was made with it)
        context = current()
        if context["request_id"] is None and "request" in attrs:
            # django.request logs 4xx/5xx after the middleware has returned: use the
            # context the middleware left on the request.
            context = getattr(attrs["request"], CONTEXT_ATTR, context)
        attach_context(record, context)
        return True


def attach_context(record: logging.LogRecord, context: Mapping[str, Any]) -> None:
    """Put a context on a record: its snapshot for our formatters, each field as an
    attribute ("-" when absent) unless `extra` set it, OpenTelemetry's attributes."""
    attrs = record.__dict__
    attrs[CONTEXT_SNAPSHOT_ATTR] = context
    given = None
    for key, value in context.items():
        if key not in attrs:
            attrs[key] = EMPTY if value is None else value
        elif given is None:
            given = [key]
        else:
            given.append(key)
    if given is not None:  # context fields the call gave in `extra`: theirs win
        attrs[GIVEN_ATTR] = given
    if otel.INSTALLED and "otelTraceID" not in attrs:
        attrs.update(otel.record_attrs(attrs["trace_id"], attrs["span_id"], current_flags()))


def _format_exception(record: logging.LogRecord) -> str:
    exc_type, exc, tb = record.exc_info or (None, None, None)
    return "".join(traceback.format_exception(exc_type, exc, tb)).rstrip("\n")


def _long(arg: Any) -> bool:
    return type(arg) is str and len(arg) > ARG_LIMIT


def _capped(arg: Any) -> Any:
    return cap(arg, ARG_LIMIT) if type(arg) is str else arg


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:
        return f"{record.msg!s} [unformattable arguments]"


class RedactionFilter(logging.Filter):
    """Mask secrets in the message, its arguments, extra fields and exception text.

    Runs on the caller's side of the queue: it merges the arguments into the message
    (so the listener never sees raw arguments) and renders the traceback to text. Every
    part is masked whole before anything caps it. Never raises: a record it cannot
    render is kept with a note instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        attrs = record.__dict__
        if attrs.get("_obs_redacted"):
            return True
        attrs["_obs_redacted"] = True
        redactor = get_redactor()
        self._render(record, redactor)
        if redactor.is_null:
            return True
        for key in extra_keys(record):
            try:
                attrs[key] = redactor.field(key, attrs[key])
            except Exception:
                attrs[key] = "[unrenderable]"
        return True

    @staticmethod
    def _render(record: logging.LogRecord, redactor: Redactor | NullRedactor) -> None:
        args = record.args
        if args:
            # Each string argument is masked, then capped: a client's 8 KB header passed
            # twice to one message must not make a 16 KB line. But a card can straddle two
            # arguments, and a cut argument would keep its half: the message is masked
            # whole first, and the arguments are cut only when that found nothing more.
            masked: Any = args
            capped: Any = None
            if isinstance(args, tuple):
                masked = tuple(redactor.text(arg) if type(arg) is str else arg for arg in args)
                if any(_long(arg) for arg in masked):
                    capped = tuple(_capped(arg) for arg in masked)
            elif isinstance(args, dict):
                masked = {k: redactor.text(a) if type(a) is str else a for k, a in args.items()}
                if any(_long(arg) for arg in masked.values()):
                    capped = {key: _capped(arg) for key, arg in masked.items()}
            record.args = masked
            message = _message(record)
            if capped is not None and redactor.text(message) == message:
                record.args = capped
                message = _message(record)
        else:
            message = _message(record)
        record.msg = redactor.text(message)  # whole: a card can straddle two arguments
        record.args = None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            try:
                record.exc_text = redactor.text(_format_exception(record))
            except Exception:
                record.exc_text = "[unrenderable traceback]"
        elif record.exc_text:
            record.exc_text = redactor.text(record.exc_text)
        record.exc_info = None  # frames stay on this side of the queue
        if record.stack_info:
            record.stack_info = redactor.text(record.stack_info)
