"""Lifecycle lines without a LogRecord, when nothing but our own handlers would see them.

Making a LogRecord, running the two filters over it and formatting from it costs most of
what the layer adds to a request. The started and terminal lines are the layer's own:
every part is already masked and the context is known. So when everything the request
logger hands records to is ours (the default record factory, no logger filter, every
handler one of our queued handlers with exactly our two filters, after our FloodFilter or
not (it passes every lifecycle line), and one of our formatters in its own layout), a
`PreparedLine` is made instead, and each handler's formatter turns it into text in the
writer thread with the same code that formats records (`TextFormatter.line`,
`JsonFormatter.fill`). With anything else attached (a user's handler, filter, formatter
or record factory), records are made as usual, so every handler receives exactly what it
always did. The plan is checked on every line
(a few attribute reads): a handler added at run time is seen at once.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
import threading
import time
from collections.abc import Mapping
from types import CodeType, FrameType
from typing import Any

from observability.context import CONTEXT_FIELDS
from observability.filters import FloodFilter, RedactionFilter, RequestContextFilter
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
from observability.textline import render_fields, render_value
from observability.writer import writer

_context_values = operator.itemgetter(*CONTEXT_FIELDS)
_CONTEXT_KEYS = frozenset(CONTEXT_FIELDS)
OUR_HANDLERS = (QueuedFileHandler, QueuedStreamHandler)
OUR_FILTERS = [RequestContextFilter, RedactionFilter]
#: The handler filters a fast line may skip: ours, with or without flood control first
#: (FloodFilter passes every REQUEST_LOGGER record: lifecycle lines are never summarised).
OUR_FILTER_LISTS = (OUR_FILTERS, [FloodFilter, *OUR_FILTERS])
OUR_FORMATTERS = (
    TextFormatter,
    ApiFormatter,
    VerboseFormatter,
    DetailedFormatter,
    SimpleFormatter,
    JsonFormatter,
)


class LineContext:
    """One context snapshot's share of a request's lines: rendered once, used by each line.

    The text of the context fields is rendered when a text formatter first needs it (in
    the writer thread) and kept: a request's two lines share it unless the context
    changed between them (the user bound at authentication).
    """

    __slots__ = ("_text", "bound", "context")

    def __init__(self, context: Mapping[str, Any], text: str | None = None) -> None:
        self.context = context
        self.bound = (
            []  # the usual case, checked in one step: nothing bound beyond the context
            if context.keys() <= _CONTEXT_KEYS
            else [(key, value) for key, value in context.items() if key not in NOT_EXTRA]
        )
        self._text: str | None = text

    @property
    def text(self) -> str:
        """` request_id=... user_id=... ... span_id=...`."""
        if self._text is None:
            self._text = render_fields(CONTEXT_FIELDS, _context_values(self.context))
        return self._text


class PreparedLine:
    """One lifecycle line, ready to format: what a LogRecord would have carried.

    Made on every request, so it keeps what it is given and works out the rest (level
    name, field tuples, where and on which thread it was logged) only when a layout
    reads it.
    """

    __slots__ = (
        "_code",
        "_fields",
        "_lasti",
        "_logger",
        "_thread",
        "created",
        "levelno",
        "message",
        "process",
        "shared",
        "text",
    )

    def __init__(
        self,
        logger: logging.Logger,
        level: int,
        message: str,
        shared: LineContext,
        fields: Mapping[str, Any],
        caller: FrameType,
        text: str | None = None,
    ) -> None:
        self.created = time.time()
        self.levelno = level
        self._logger = logger
        self.message = message
        self.shared = shared
        self._fields = fields  # not changed after: each line gets a dict of its own
        # The fields in the text grammar, when the caller knows them (not with bound ones).
        self.text = text if not shared.bound else None
        # Where it was logged (f_lineno costs more than the rest of this method: the
        # instruction offset is kept, its line looked up when a layout shows it).
        self._code = caller.f_code
        self._lasti = caller.f_lasti
        self._thread = threading.current_thread()
        self.process = _pid

    @property
    def levelname(self) -> str:
        return logging.getLevelName(self.levelno)

    @property
    def name(self) -> str:
        return self._logger.name

    @property
    def threadName(self) -> str:
        return self._thread.name

    @property
    def keys(self) -> tuple[str, ...]:
        """The extra fields' names in a record's order: those given, then the bound ones
        (a field given wins over a bound one of the same name)."""
        fields = self._fields
        bound = self.shared.bound
        if not bound:
            return tuple(fields)
        return (*fields, *(key for key, _ in bound if key not in fields))

    @property
    def values(self) -> tuple[Any, ...]:
        fields = self._fields
        bound = self.shared.bound
        if not bound:
            return tuple(fields.values())
        return (*fields.values(), *(value for key, value in bound if key not in fields))

    @property
    def pathname(self) -> str:
        return self._code.co_filename

    @property
    def funcName(self) -> str:
        return self._code.co_name

    @property
    def lineno(self) -> int:
        return _line_of(self._code, self._lasti)

    @property
    def fields(self) -> list[tuple[str, Any]]:
        """Every field in a record's order: the context's, then the extras."""
        pairs = list(zip(CONTEXT_FIELDS, _context_values(self.shared.context), strict=True))
        given = self._fields
        pairs += given.items()
        bound = self.shared.bound
        if bound:
            pairs += [(key, value) for key, value in bound if key not in given]
        return pairs

    @property
    def module(self) -> str:
        return os.path.splitext(os.path.basename(self.pathname))[0]

    def deliver(self, handlers: tuple[QueuedHandler, ...]) -> None:
        for handler in handlers:
            if self.levelno >= handler.level:
                writer.submit(handler, handler.formatter.format_prepared(self))  # type: ignore[union-attr]


def write_line(
    handlers: tuple[QueuedHandler, ...],
    logger: logging.Logger,
    level: int,
    message: str,
    shared: LineContext,
    fields: Mapping[str, Any],
    caller: FrameType,
    text: str | None = None,
) -> None:
    """Format a lifecycle line now and queue it for each handler that takes its level.

    A text layout with nothing after the fields (the requests file's) is given the line's
    parts; any other layout a PreparedLine, made once. Both end in the same
    `format_parts()`.
    """
    created = time.time()
    line: PreparedLine | None = None
    for handler in handlers:
        if level < handler.level:
            continue
        formatter: Any = handler.formatter
        if formatter.simple and not shared.bound:
            if text is None:
                text = render_fields(tuple(fields), tuple(fields.values()))
            out = formatter.format_parts(created, level, logger.name, message, shared.text, text)
        else:
            if line is None:
                line = PreparedLine(logger, level, message, shared, fields, caller, text)
                line.created = created
            out = formatter.format_prepared(line)
        writer.submit(handler, out)


def begun_text(context: Mapping[str, Any]) -> str:
    """The context text (LineContext.text) of a context as the lifecycle set it from
    `begin()`: nothing bound yet, so what render_fields would write, in less time.

    Its IDs, IP and method were checked when the request was read (an ID allowlist,
    hex from our generator or a valid traceparent, an address parsed by ipaddress, an
    HTTP token): each is written as it is. The user and the path are rendered.
    """
    return (
        f" request_id={context['request_id']}"
        f" user_id={render_value(context['user_id'])}"
        f" username={render_value(context['username'])}"
        f" ip={context['ip']} method={context['method']}"
        f" path={render_value(context['path'])}"
        f" trace_id={context['trace_id']} span_id={context['span_id']}"
    )


def terminal_text(
    status: int, duration: float, size: int | None, route: str, view: str
) -> str | None:
    """The terminal line's fields in the text grammar (what render_fields would write).

    Numbers are written as they are; the route and view (a URL pattern and a dotted
    name, a few a URLconf) are rendered once each. None for anything unusual.
    """
    if type(status) is not int or type(duration) is not float:
        return None
    if size is not None and type(size) is not int:
        return None
    key = (route, view)
    names = _route_texts.get(key)
    if names is None:
        names = render_fields(("route", "view"), key)
        if len(_route_texts) < 4096:  # routes are few; a flood of new ones is not kept
            _route_texts[key] = names
    return f" status={status} duration={duration!r} response_size={size}{names}"


_route_texts: dict[tuple[str, str], str] = {}


@functools.lru_cache(maxsize=256)
def _line_of(code: CodeType, lasti: int) -> int:
    """The source line of the instruction at byte offset `lasti` (a frame's f_lasti)."""
    for start, end, line in code.co_lines():
        if start <= lasti < end and line is not None:
            return line
    return code.co_firstlineno


_pid = os.getpid()


def _new_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_new_pid)


def plan(logger: logging.Logger, level: int) -> tuple[QueuedHandler, ...] | None:
    """The handlers a line at `level` goes to, if all of them are ours; else None.

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


_plans: dict[str, tuple[tuple[Any, ...], tuple[QueuedHandler, ...] | None]] = {}


def _shape(logger: logging.Logger) -> tuple[Any, ...]:
    """What the plan depends on, cheap to compare: handlers, their formatter and filters."""
    shape: list[Any] = []
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            shape += (handler, handler.formatter, len(handler.filters))
        if not current.propagate:
            break
        current = current.parent
    return tuple(shape)


def _check(logger: logging.Logger) -> tuple[QueuedHandler, ...] | None:
    handlers: list[QueuedHandler] = []
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if (
                type(handler) not in OUR_HANDLERS
                or [type(f) for f in handler.filters] not in OUR_FILTER_LISTS
                or type(handler.formatter) not in OUR_FORMATTERS
                or not getattr(handler.formatter, "plain", False)
            ):
                return None
            handlers.append(handler)  # type: ignore[arg-type]
        if not current.propagate:
            break
        current = current.parent
    return tuple(handlers) if handlers else None
