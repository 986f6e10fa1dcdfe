"""How a lifecycle line goes out: as a Line straight to our handlers, or as a LogRecord.

Making a LogRecord and running the filter chain over it costs most of what the layer adds
to a request. The lifecycle lines are the layer's own: every part is masked already and
the context is known. So when every handler the request logger hands records to takes
Lines (`QueuedHandler.takes_lines`: our handler, our two filters, a formatter that renders
Lines) and nothing else would see a record (the default record factory, no logger
filter), the line is built as a `Line` and rendered by each handler's formatter; with
anything else attached (a user's handler, filter, formatter or record factory), a record
is made as usual, so every handler receives exactly what it always did. The plan is
checked on every line (a few attribute reads): a handler added at run time is seen at once.

A started line that sampling may yet drop is held (observability.http.sampling) with whatever
writes it later: the Line and its handlers, or the record.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol

from observability.filters import attach_context
from observability.handlers import QueuedHandler
from observability.lines.line import Line
from observability.output.writer import writer
from observability.tracing.context import current

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Plan = tuple[QueuedHandler, ...]


class Holder(Protocol):
    """A request's sampling: whether lines are written now, and where held ones wait."""

    by_hash: bool

    def hold(self, deliver: Any) -> None: ...

    def end(self, *, worth_keeping: bool) -> dict[str, Any] | None: ...


class Emitter:
    """Writes one request's lifecycle lines to its logger (the plan is made once a request).

    The request's lifecycle is one (observability.http.lifecycle.RequestLifecycle): it sets
    `logger` and, on its way in, `sample`.
    """

    logger: logging.Logger
    sample: Holder
    _plan: Plan | None = None

    def emit(
        self,
        level: int,
        message: str,
        fields: Mapping[str, Any],
        exc_info: ExcInfo | None = None,
        *,
        hold: bool = False,
    ) -> None:
        """Write a lifecycle line now (or hold it: `hold` for the started line, which
        sampling may drop). A line with a traceback is a record: its text must be masked
        by the redaction filter."""
        logger = self.logger
        if not logger.isEnabledFor(level):
            return
        caller = sys._getframe(1)  # the lifecycle method: logging's own findCaller, cheaper
        context = current()
        held = hold and not self.sample.by_hash
        handlers = None
        if exc_info is None:
            # One plan per request: its handlers do not change between its two lines.
            handlers = self._plan if self._plan is not None else plan(logger, level)
            self._plan = handlers
        if handlers is not None:
            line = Line(
                time.time(),
                level,
                logger.name,
                message,
                context,
                fields,
                (caller.f_code, caller.f_lasti),
            )
            if held:  # written later, maybe on another thread: it keeps this one
                line._thread = threading.current_thread()
                self.sample.hold(functools.partial(deliver, handlers, line))
                return
            for handler in handlers:  # deliver(), inlined: this runs twice a request
                if level >= handler.level:
                    _submit(handler, handler.formatter.render(line))  # type: ignore[union-attr]
            return
        extra = {**fields, "_obs_redacted": True} if exc_info is None else dict(fields)
        record = logger.makeRecord(
            logger.name,
            level,
            caller.f_code.co_filename,
            caller.f_lineno,
            message,
            (),
            exc_info,
            caller.f_code.co_name,
            extra,
        )
        if held:  # it may be written from another thread, where this context is not bound
            attach_context(record, context)
            self.sample.hold(functools.partial(logger.handle, record))
        else:
            logger.handle(record)


def deliver(handlers: Plan, line: Line) -> None:
    """Render a Line for each handler that takes its level and queue the text."""
    level = line.level
    for handler in handlers:
        if level >= handler.level:
            _submit(handler, handler.formatter.render(line))  # type: ignore[union-attr]


_submit = writer.submit


def plan(logger: logging.Logger, level: int) -> Plan | None:
    """The handlers a line at `level` goes to, if all of them take Lines; else None.

    The full check runs when the logger's handlers, filters or propagation changed since
    the last call (or a handler's formatter or filters); otherwise the last answer stands.
    """
    if (
        logger.filters
        or logger.disabled
        or logging.getLogRecordFactory() is not logging.LogRecord
        or logger.manager.disable >= level
    ):
        return None
    cached = _plans.get(logger.name)
    if cached is not None and cached[0] == _shape(logger):
        return cached[1]
    handlers = _check(logger)
    _plans[logger.name] = (_shape(logger), handlers)
    return handlers


_plans: dict[str, tuple[tuple[Any, ...], Plan | None]] = {}


def _shape(logger: logging.Logger) -> tuple[Any, ...]:
    """What the plan depends on, cheap to compare: handlers, their formatter and filters."""
    shape: list[Any] = []
    current_logger: logging.Logger | None = logger
    while current_logger is not None:
        for handler in current_logger.handlers:
            shape += (handler, handler.formatter, len(handler.filters))
        if not current_logger.propagate:
            break
        current_logger = current_logger.parent
    return tuple(shape)


def _check(logger: logging.Logger) -> Plan | None:
    handlers: list[QueuedHandler] = []
    current_logger: logging.Logger | None = logger
    while current_logger is not None:
        for handler in current_logger.handlers:
            if not getattr(handler, "takes_lines", False):
                return None
            handlers.append(handler)  # type: ignore[arg-type]
        if not current_logger.propagate:
            break
        current_logger = current_logger.parent
    return tuple(handlers) if handlers else None
