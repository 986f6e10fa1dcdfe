"""The seed's text formatters (verbose, simple, detailed, api); JSON lines are
`observability.json_formatter`'s (re-exported here, where settings name them).

Each renders a `Line` (observability.lines.line) and nothing else: `format(record)` renders the
Line built from the record, and the lifecycle hands its Lines to `render()` directly.

Text lines read `<time> <LEVEL> [<logger>] <message> | request_id=... user_id=... ip=...`
so the seed's grep recipes work as written. Times are UTC. Every value is escaped:
one record is one line, its traceback included (as `\\n` escapes).
"""

from __future__ import annotations

import functools
import logging
import operator
import time
from collections.abc import Mapping
from typing import Any

from observability.json_formatter import JsonFormatter, iso_timestamp
from observability.lines.fields import CONTEXT_COUNT, META, bound_fields, detail_fields
from observability.lines.line import Line
from observability.lines.textline import (
    SEPARATOR,
    render_field,
    render_fields,
    render_message,
)
from observability.masking.escaping import (
    MESSAGE_LIMIT,
    escape_traceback,
)
from observability.tracing.context import CONTEXT_FIELDS

__all__ = [
    "ApiFormatter",
    "DetailedFormatter",
    "JsonFormatter",
    "SimpleFormatter",
    "TextFormatter",
    "VerboseFormatter",
    "bound_fields",
    "detail_fields",
    "iso_timestamp",
]

_context_values = operator.itemgetter(*CONTEXT_FIELDS)


class _LevelNames(dict[int, str]):
    """Level number -> name, as logging names it (a level of the user's own too)."""

    def __missing__(self, level: int) -> str:
        name = logging.getLevelName(level)
        if len(self) < 64:
            self[level] = name
        return name


_LEVEL_NAMES = _LevelNames()
_MILLISECONDS = tuple(f",{ms:03d}" for ms in range(1000))


class TextFormatter(logging.Formatter):
    """`<prefix> <message> | <context tokens> <field tokens> [| traceback]`, in UTC."""

    converter = staticmethod(time.gmtime)
    #: Line attributes appended after the fields, by their record names: ("module", "process")
    meta_fields: tuple[str, ...] = ()
    default_format = "%(asctime)s %(levelname)s [%(name)s] %(message)s"

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, **kwargs: Any) -> None:
        kwargs.pop("style", None)
        super().__init__(fmt or self.default_format, datefmt, style="%", **kwargs)
        # (the last context rendered, its text): a request's lines share their context
        self._last_context: tuple[Mapping[str, Any] | None, str] = (None, "")

    # (second, its text): one attribute, so that a thread reading it while another
    # writes it (lines are formatted on request threads) never pairs the wrong two
    _second: tuple[int, str] = (-1, "")

    @functools.cached_property
    def _own_head(self) -> bool:
        """Whether head() is this class's (render() inlines it)."""
        return type(self).head is TextFormatter.head

    @property
    def takes_lines(self) -> bool:
        """Whether it renders Lines as they come (our own layout: no custom format or date)."""
        return self._fmt == self.default_format and self.datefmt is None

    def timestamp(self, created: float) -> str:
        """`2026-11-26 17:00:27,041` (UTC), strftime'd once a second."""
        second = int(created)
        last, text = self._second
        if second != last:
            text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
            self._second = (second, text)
        return text + _MILLISECONDS[int((created - second) * 1000)]

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self.timestamp(record.created)

    def format(self, record: logging.LogRecord) -> str:
        line = Line.of_record(record)
        if self.takes_lines:
            return self.render(line)
        # A layout of the user's own: its head from the record, the rest as ours.
        record.message = render_message(line.message)
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        return self.render(line, self.formatMessage(record))

    def head(self, created: float, levelname: str, name: str, message: str) -> str:
        """`<time> <LEVEL> [<logger>] <message>`, the message already rendered."""
        return f"{self.timestamp(created)} {levelname} [{name}] {message}"

    def context_text(self, context: Mapping[str, Any]) -> str:
        """` request_id=... ... span_id=...`: rendered once for the lines that share it."""
        last, text = self._last_context
        if last is context:
            return text
        try:
            values = _context_values(context)
        except KeyError:  # a context made elsewhere, without some of the fields
            values = tuple([context.get(key) for key in CONTEXT_FIELDS])
        text = render_fields(CONTEXT_FIELDS, values)
        self._last_context = (context, text)
        return text

    def render(self, line: Line, head: str | None = None) -> str:
        """The line: its head, its context, its fields, details and layout's own, its
        identity, then its traceback."""
        if head is None:
            message = line.message
            if len(message) > MESSAGE_LIMIT or not message.isprintable() or "|" in message:
                message = render_message(message)
            levelname = _LEVEL_NAMES[line.level]
            if self._own_head:  # head() inlined: this runs for every line
                head = f"{self.timestamp(line.time)} {levelname} [{line.logger}] {message}"
            else:
                head = self.head(line.time, levelname, line.logger, message)
        context = line.context
        last, context_text = self._last_context
        if last is not context:
            context_text = self.context_text(context)
        fields = line.fields
        fields_text = render_fields(tuple(fields), tuple(fields.values())) if fields else ""
        if len(context) != CONTEXT_COUNT or line.details or line.host is not None:
            fields_text += self._more_fields(line)
        meta_fields = self.meta_fields
        if meta_fields:  # one call: a record's module, process and thread are texts seen before
            fields_text += render_fields(
                meta_fields, tuple([META[key](line) for key in meta_fields])
            )
        text = f"{head} |{context_text}{fields_text} record_id={line.record_id}"
        if line.exc_text:
            return f"{text}{SEPARATOR}{escape_traceback(line.exc_text)}"
        return text

    @staticmethod
    def _more_fields(line: Line) -> str:
        """The fields bound to the context, the details, the host: ` key=value ...`."""
        rest = bound_fields(line)
        if line.details:
            rest += detail_fields(line, line.fields)
        if line.host is not None:
            rest.append(("host", line.host))
        return "".join([render_field(key, value) for key, value in rest])


class SimpleFormatter(TextFormatter):
    """Console: level, logger, message, context."""

    default_format = "%(levelname)s [%(name)s] %(message)s"

    def head(self, created: float, levelname: str, name: str, message: str) -> str:
        return f"{levelname} [{name}] {message}"


class ApiFormatter(TextFormatter):
    """The requests file: the seed's API line plus the context."""


class VerboseFormatter(TextFormatter):
    """The general and security files: adds the module, process and thread."""

    meta_fields = ("module", "process", "threadName")


class DetailedFormatter(TextFormatter):
    """The errors and debug files: adds where the record was emitted."""

    meta_fields = ("pathname", "lineno", "funcName", "process", "threadName")
