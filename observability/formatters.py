"""The seed's formatters (verbose, simple, detailed, api) and one JSON line formatter.

Each renders a `Line` (observability.lines.line) and nothing else: `format(record)` renders the
Line built from the record, and the lifecycle hands its Lines to `render()` directly.

Text lines read `<time> <LEVEL> [<logger>] <message> | request_id=... user_id=... ip=...`
so the seed's grep recipes work as written. Times are UTC. Every value is escaped:
one record is one line, its traceback included (as `\\n` escapes).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import operator
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

try:
    import orjson as _orjson
except ImportError:  # optional: JSON lines are then written by the stdlib's json
    _orjson = None  # type: ignore[assignment]

from observability.lines.line import Line
from observability.lines.textline import (
    SEPARATOR,
    render_field,
    render_fields,
    render_key,
    render_message,
)
from observability.masking.escaping import MESSAGE_LIMIT, VALUE_LIMIT, escape, escape_traceback
from observability.tracing.context import CONTEXT_FIELDS

_CONTEXT_SET = frozenset(CONTEXT_FIELDS)
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
#: A Line's attributes a text layout can show after the fields, by their record names.
_META: dict[str, Callable[[Line], Any]] = {
    "module": lambda line: line.site.module if line.site else None,
    "pathname": lambda line: line.site.pathname if line.site else None,
    "lineno": lambda line: line.site.lineno if line.site else None,
    "funcName": lambda line: line.site.funcName if line.site else None,
    "process": lambda line: line.process,
    "threadName": lambda line: line.thread,
}


_CONTEXT_COUNT = len(CONTEXT_FIELDS)


def bound_fields(line: Line) -> list[tuple[str, Any]]:
    """The context's fields beyond CONTEXT_FIELDS (bound later), unless a field of the
    line's own has the same name (it wins, where the line gives it)."""
    context = line.context
    if len(context) == _CONTEXT_COUNT:
        return []
    fields = line.fields
    return [
        (key, value)
        for key, value in context.items()
        if key not in _CONTEXT_SET and key not in fields
    ]


def detail_fields(line: Line, taken: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The details as text fields: `key=value`, or `details.key=value` when the name is
    taken by the context, the line's fields or the layout's own."""
    details = line.details
    if not details:
        return []
    return [
        (f"details.{key}" if key in taken or key in _CONTEXT_SET or key in _META else key, value)
        for key, value in details.items()
    ]


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
        if len(context) != _CONTEXT_COUNT or line.details or line.host is not None:
            fields_text += self._more_fields(line)
        if self.meta_fields:
            fields_text += "".join(
                [render_field(key, _META[key](line)) for key in self.meta_fields]
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


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: timestamp (UTC ISO-8601), level, logger, message, the context,
    the fields, `details`, process, thread, record_id; absent values are left out."""

    takes_lines = True  # python-json-logger's own format string is not used

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("json_ensure_ascii", False)
        kwargs.setdefault("json_default", str)
        super().__init__(*args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        return self.render(Line.of_record(record))

    def render(self, line: Line) -> str:
        data: dict[str, Any] = {
            "timestamp": iso_timestamp(line.time),
            "level": logging.getLevelName(line.level),
            "logger": line.logger,
            "message": escape(line.message, MESSAGE_LIMIT),
        }
        context = line.context
        for key in CONTEXT_FIELDS:
            value = context.get(key)
            if value is not None:
                data[key] = _json_value(value)
        for key, value in (*line.fields.items(), *bound_fields(line)):
            if value is not None:
                data[_json_key(key)] = _json_value(value)
        if line.details:
            data["details"] = _json_value(line.details)
        data["process"] = line.process
        data["thread"] = line.thread
        data["record_id"] = line.record_id
        if line.host is not None:
            data["host"] = escape(line.host, VALUE_LIMIT)
        if line.exc_text:
            data["exc_info"] = escape_traceback(line.exc_text, bar=False)
        return self.jsonify_log_record(data)

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        """Compact JSON, by orjson when it is installed (several times faster), else json.

        Every value is a str, number, bool, None, list or dict by now (`_json_value`), so
        both write the same object; a number orjson refuses (an int past 64 bits) falls
        back to json. A serializer or indent given in the settings is used as given.
        """
        if self.json_serializer is not json.dumps or self.json_indent is not None:
            return str(super().jsonify_log_record(log_data))
        if _orjson is not None:
            try:
                return _orjson.dumps(log_data, default=self.json_default).decode()
            except (TypeError, _orjson.JSONEncodeError):
                pass
        return json.dumps(
            log_data,
            default=self.json_default,
            ensure_ascii=self.json_ensure_ascii,
            separators=(",", ":"),
        )


_json_keys: dict[str, str] = {}


def _json_key(key: str) -> str:
    name = _json_keys.get(key)
    if name is None:
        name = render_key(key)
        if len(_json_keys) < 4096:  # field names are few; a flood is not kept
            _json_keys[key] = name
    return name


_last_second: tuple[int, str] = (-1, "")


def iso_timestamp(created: float) -> str:
    """`2026-11-27T10:11:00.041+00:00` (UTC, milliseconds), the date formatted once a second."""
    global _last_second
    second = int(created)
    last, text = _last_second
    if second != last:
        text = datetime.fromtimestamp(second, tz=UTC).isoformat()[:19]
        _last_second = (second, text)
    return text + _ISO_MILLISECONDS[int((created - second) * 1000)]


_ISO_MILLISECONDS = tuple(f".{ms:03d}+00:00" for ms in range(1000))


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        return escape(value, VALUE_LIMIT)
    if isinstance(value, dict):
        return {escape(str(k), 64): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, float):
        # JSON has no infinity or NaN: json.dumps would write an invalid token, orjson null
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, bool | int):
        return value
    return escape(str(value), VALUE_LIMIT)
