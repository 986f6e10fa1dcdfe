"""LOG_FORMAT=json: one JSON object a line, rendered from a Line: the timestamp (UTC
ISO-8601), level, logger, message, the context, the fields, `details`, process, thread,
record_id; absent values are left out, numbers stay numbers (`line.schema.json`)."""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

try:
    import orjson as _orjson
except ImportError:  # optional: JSON lines are then written by the stdlib's json
    _orjson = None  # type: ignore[assignment]

from observability.lines.fields import bound_fields
from observability.lines.line import Line
from observability.lines.textline import render_key
from observability.masking.escaping import MESSAGE_LIMIT, VALUE_LIMIT, escape, plain_traceback
from observability.tracing.context import CONTEXT_FIELDS, EMPTY


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
            if value is not None and (value != EMPTY or key == "username"):
                data[key] = _json_value(value)  # "-" is no IP, method or path: left out
        for key, value in (*line.fields.items(), *bound_fields(line)):
            if value is not None:
                data[_json_key(key)] = _json_value(value)
        if line.details:
            details = {key: value for key, value in line.details.items() if value is not None}
            if details:
                data["details"] = _json_value(details)
        data["process"] = line.process
        data["thread"] = line.thread
        data["record_id"] = line.record_id
        if line.host is not None:
            data["host"] = escape(line.host, VALUE_LIMIT)
        if line.exc_text:
            data["exc_info"] = plain_traceback(line.exc_text)  # real line breaks
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
