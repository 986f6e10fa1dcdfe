"""The seed's formatters (verbose, simple, detailed, api) and one JSON line formatter.

Text lines read `<time> <LEVEL> [<logger>] <message> | request_id=... user_id=... ip=...`
so the seed's grep recipes work as written. Times are UTC. Every value is escaped:
one record is one line, its traceback included (as `\\n` escapes).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

try:
    import orjson as _orjson
except ImportError:  # optional: JSON lines are then written by the stdlib's json
    _orjson = None  # type: ignore[assignment]

from observability.context import CONTEXT_FIELDS, EMPTY
from observability.escaping import MESSAGE_LIMIT, VALUE_LIMIT, escape, escape_traceback
from observability.records import extra_keys
from observability.textline import (
    SEPARATOR,
    render_field,
    render_fields,
    render_key,
    render_message,
)


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    text = record.exc_text or ""
    if record.stack_info:
        text = f"{text}\n{record.stack_info}" if text else record.stack_info
    return text


_MILLISECONDS = tuple(f",{ms:03d}" for ms in range(1000))


class TextFormatter(logging.Formatter):
    """`<prefix> <message> | <context tokens> <extra tokens> [| traceback]`, in UTC."""

    converter = staticmethod(time.gmtime)
    #: record attributes appended after the context, e.g. ("module", "process")
    meta_fields: tuple[str, ...] = ()
    default_format = "%(asctime)s %(levelname)s [%(name)s] %(message)s"

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, **kwargs: Any) -> None:
        kwargs.pop("style", None)
        super().__init__(fmt or self.default_format, datefmt, style="%", **kwargs)

    # (second, its text): one attribute, so that a thread reading it while another
    # writes it (lines are formatted on request threads) never pairs the wrong two
    _second: tuple[int, str] = (-1, "")

    @property
    def plain(self) -> bool:
        """Whether this formatter writes our own layout (no custom format string or date)."""
        return self._fmt == self.default_format and self.datefmt is None

    @functools.cached_property
    def _own_head(self) -> bool:
        """Whether head() is this class's (format_prepared inlines it)."""
        return type(self).head is TextFormatter.head

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
        """The line's grammar is observability.textline's; this fills it from the record."""
        message = record.message = render_message(record.getMessage())
        attrs = record.__dict__
        if self.plain:
            head = self.head(record.created, record.levelname, record.name, message)
        else:
            if self.usesTime():
                record.asctime = self.formatTime(record, self.datefmt)
            head = self.formatMessage(record)
        fields = [(key, attrs.get(key, EMPTY)) for key in CONTEXT_FIELDS]
        fields += [(key, attrs[key]) for key in extra_keys(record)]
        fields += [(key, attrs.get(key, EMPTY)) for key in self.meta_fields]
        return self.line(head, fields, _exception_text(self, record))

    def head(self, created: float, levelname: str, name: str, message: str) -> str:
        """`<time> <LEVEL> [<logger>] <message>`, the message already rendered."""
        return f"{self.timestamp(created)} {levelname} [{name}] {message}"

    def format_prepared(self, line: Prepared) -> str:
        """A line prepared without a LogRecord (observability.fastpath), laid out alike."""
        text = line.text
        if text is None:
            text = render_fields(line.keys, line.values)
        parts = self.format_parts(
            line.created, line.levelno, line.name, line.message, line.shared.text, text
        )
        if not self.meta_fields:
            return parts
        return parts + "".join([render_field(key, getattr(line, key)) for key in self.meta_fields])

    #: No record attributes after the fields: format_parts() makes the whole line.
    @property
    def simple(self) -> bool:
        return not self.meta_fields

    def format_parts(
        self,
        created: float,
        levelno: int,
        name: str,
        message: str,
        context_text: str,
        fields_text: str,
    ) -> str:
        """A line from its parts, the context and the fields already rendered."""
        message = render_message(message)
        levelname = logging.getLevelName(levelno)
        if self._own_head:  # head() inlined: this runs twice a request
            head = f"{self.timestamp(created)} {levelname} [{name}] {message}"
        else:
            head = self.head(created, levelname, name, message)
        return f"{head} |{context_text}{fields_text}"

    @staticmethod
    def line(head: str, fields: Iterable[tuple[str, Any]], traceback: str = "") -> str:
        """The whole line from its head, its fields in order and its traceback."""
        parts = [head, SEPARATOR[:-1]]
        parts += [render_field(key, value) for key, value in fields]
        if traceback:
            parts.append(SEPARATOR)
            parts.append(escape_traceback(traceback))
        return "".join(parts)


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
    """One JSON object a line: timestamp (UTC ISO-8601), level, logger, message, context, fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("json_ensure_ascii", False)
        kwargs.setdefault("json_default", str)
        super().__init__(*args, **kwargs)

    plain = True  # python-json-logger's own format string is not used: no layout to keep
    simple = False  # a prepared line's every field is read: no format_parts()

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        attrs = record.__dict__
        fields = [(key, attrs.get(key, EMPTY)) for key in CONTEXT_FIELDS]
        fields += [(key, attrs[key]) for key in extra_keys(record)]
        exc = message_dict.get("exc_info") or _exception_text(self, record)
        self.fill(log_data, record, record.message, fields, exc)

    def format_prepared(self, line: Prepared) -> str:
        """A line prepared without a LogRecord (observability.fastpath), laid out alike."""
        log_data: dict[str, Any] = {}
        self.fill(log_data, line, line.message, line.fields, "")
        return str(self.serialize_log_record(self.process_log_record(log_data)))

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

    @staticmethod
    def fill(
        log_data: dict[str, Any],
        source: Prepared | logging.LogRecord,
        message: str,
        fields: Iterable[tuple[str, Any]],
        exc: str,
    ) -> None:
        """One JSON object's keys, in order, from a record or a prepared line."""
        log_data["timestamp"] = iso_timestamp(source.created)
        log_data["level"] = source.levelname
        log_data["logger"] = source.name
        log_data["message"] = escape(message, MESSAGE_LIMIT)
        for key, value in fields:
            name = key if key in _CONTEXT_SET else _json_keys.get(key)
            if name is None:
                name = render_key(key)
                if len(_json_keys) < 4096:  # field names are few; a flood is not kept
                    _json_keys[key] = name
            log_data[name] = _json_value(value)
        log_data["process"] = source.process
        log_data["thread"] = source.threadName
        if exc:
            log_data["exc_info"] = escape_traceback(exc, bar=False)


_CONTEXT_SET = frozenset(CONTEXT_FIELDS)
_json_keys: dict[str, str] = {}
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


class SharedContext(Protocol):
    @property
    def text(self) -> str: ...


class Prepared(Protocol):
    """What a prepared line offers a formatter (observability.fastpath.PreparedLine)."""

    created: float
    levelno: int
    message: str
    text: str | None
    process: int | None

    @property
    def levelname(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def threadName(self) -> str | None: ...

    @property
    def keys(self) -> tuple[str, ...]: ...

    @property
    def values(self) -> tuple[Any, ...]: ...

    @property
    def fields(self) -> list[tuple[str, Any]]: ...

    @property
    def shared(self) -> SharedContext: ...


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
