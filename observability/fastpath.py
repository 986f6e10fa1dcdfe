"""Lifecycle lines without a LogRecord, when nothing but our own handlers would see them.

Making a LogRecord, running the two filters over it and formatting from it costs most of
what the layer adds to a request. The started and terminal lines are the layer's own:
every part is already masked and the context is known. So when everything the request
logger hands records to is ours (the default record factory, no logger filter, every
handler one of our queued handlers with exactly our two filters and one of our
formatters in its own layout), a `PreparedLine` is made instead, and each handler's
formatter turns it into text in the writer thread with the same code that formats
records (`TextFormatter.line`, `JsonFormatter.fill`). With anything else attached (a
user's handler, filter, formatter or record factory), records are made as usual, so
every handler receives exactly what it always did. The plan is checked on every line
(a few attribute reads): a handler added at run time is seen at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any

from observability.context import CONTEXT_FIELDS
from observability.filters import RedactionFilter, RequestContextFilter
from observability.formatters import (
    ApiFormatter,
    DetailedFormatter,
    JsonFormatter,
    SimpleFormatter,
    TextFormatter,
    VerboseFormatter,
)
from observability.handlers import QueuedFileHandler, QueuedHandler, QueuedStreamHandler
from observability.records import NOT_EXTRA
from observability.writer import writer

OUR_HANDLERS = (QueuedFileHandler, QueuedStreamHandler)
OUR_FILTERS = [RequestContextFilter, RedactionFilter]
OUR_FORMATTERS = (
    TextFormatter,
    ApiFormatter,
    VerboseFormatter,
    DetailedFormatter,
    SimpleFormatter,
    JsonFormatter,
)


class PreparedLine:
    """One lifecycle line, ready to format: what a LogRecord would have carried."""

    __slots__ = (
        "created",
        "fields",
        "funcName",
        "levelname",
        "levelno",
        "lineno",
        "message",
        "name",
        "pathname",
        "process",
        "threadName",
    )

    def __init__(
        self,
        logger: logging.Logger,
        level: int,
        message: str,
        fields: list[tuple[str, Any]],
        caller: FrameType,
    ) -> None:
        self.created = time.time()
        self.levelno = level
        self.levelname = logging.getLevelName(level)
        self.name = logger.name
        self.message = message
        self.fields = fields
        self.pathname = caller.f_code.co_filename
        self.lineno = caller.f_lineno
        self.funcName = caller.f_code.co_name
        self.process = os.getpid()
        self.threadName = threading.current_thread().name

    @property
    def module(self) -> str:
        return os.path.splitext(os.path.basename(self.pathname))[0]

    def deliver(self, handlers: tuple[QueuedHandler, ...]) -> None:
        for handler in handlers:
            if self.levelno >= handler.level:
                writer.submit(handler, self)


def line_fields(context: Mapping[str, Any], fields: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The fields in the order a record would show them: context, given, then bound."""
    ordered = [(key, context[key]) for key in CONTEXT_FIELDS]
    ordered += fields.items()
    ordered += [
        (key, value) for key, value in context.items() if key not in fields and key not in NOT_EXTRA
    ]
    return ordered


def plan(logger: logging.Logger, level: int) -> tuple[QueuedHandler, ...] | None:
    """The handlers a line at `level` goes to, if all of them are ours; else None."""
    if (
        logger.filters
        or logger.disabled
        or logging.getLogRecordFactory() is not logging.LogRecord
        or logger.manager.disable >= level
    ):
        return None
    handlers: list[QueuedHandler] = []
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if (
                type(handler) not in OUR_HANDLERS
                or [type(f) for f in handler.filters] != OUR_FILTERS
                or type(handler.formatter) not in OUR_FORMATTERS
                or not getattr(handler.formatter, "plain", False)
            ):
                return None
            handlers.append(handler)  # type: ignore[arg-type]
        if not current.propagate:
            break
        current = current.parent
    return tuple(handlers) if handlers else None
