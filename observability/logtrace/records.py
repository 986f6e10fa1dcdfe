"""A log line read back as a Record: text lines (lines.textline), JSON lines, ECS lines.

ECS lines (`LOG_FORMAT=ecs`, one Elastic Common Schema object a line, nested as the
`ecs-logging` library writes them) are read back into our field names
(`observability.lines.ecs`), so every reader sees one shape whatever the format.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from observability.lines import ecs, textline
from observability.masking.escaping import escape, escape_traceback, read_plain_traceback

#: The tag of the file the lifecycle lines are written to (observability.conf.LOG_FILES).
REQUESTS = "requests"


@dataclass
class Record:
    time: datetime
    level: str
    logger: str
    message: str
    fields: dict[str, Any]
    traceback: str  # escaped as written: observability.masking.escaping.unescape_traceback reads it
    file: str
    raw: str
    order: int = 0
    host: str = ""  # the host folder it was read from, in a central root ("": one directory)
    also_in: tuple[str, ...] = ()  # the other files the same record was written to

    @property
    def files(self) -> str:
        """Every file the record was written to: `general+errors`."""
        return "+".join((self.file, *self.also_in))

    @property
    def request_id(self) -> str:
        return str(self.fields.get("request_id", "-"))

    @property
    def is_json(self) -> bool:
        return self.raw.startswith("{")

    @property
    def lane(self) -> str:
        """The tag of the record's file without a backup's number (`requests.2` -> `requests`)."""
        return self.file.partition(".")[0]

    def as_dict(self) -> dict[str, Any]:
        """For `--json`: numbers as numbers and absent values null, whatever the format read."""
        return {
            **({"host": self.host} if self.host else {}),
            "file": self.file,
            **({"also_in": list(self.also_in)} if self.also_in else {}),
            "timestamp": self.time.isoformat(timespec="milliseconds"),
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
            "fields": {key: typed(key, value) for key, value in self.fields.items()},
            "traceback": self.traceback or None,
        }


#: Fields whose values are numbers: a text line holds them as text, `--json` gives numbers.
NUMBER_FIELDS = frozenset(
    {
        *("status", "status_code", "response_size", "duration", "threshold", "sample_rate"),
        *("value", "repeated", "window", "process", "lineno", "length", "retry_after"),
        *("user_id", "payment_id", "refund_id", "plan_id", "subscription_id"),
    }
)
_INTEGER = re.compile(r"-?[0-9]{1,18}")


def typed(key: str, value: Any) -> Any:
    """A field's value as JSON should hold it: a number field's text as a number, the text
    lines' `-` (absent) as None; anything else as it is (a username may be "-")."""
    if not isinstance(value, str):
        return value
    if value == textline.ABSENT and key != "username":
        return None
    if key in NUMBER_FIELDS:
        if _INTEGER.fullmatch(value):
            return int(value)
        try:
            number = float(value)
        except ValueError:
            return value  # a user ID that is no number (a UUID primary key)
        return number if math.isfinite(number) else value
    return value


def parse_line(line: str, file: str = "") -> Record | None:
    """A text, JSON or ECS line of ours as a Record; None for anything else."""
    line = line.rstrip("\n")
    if line.startswith("{"):
        return _parse_json(line, file)
    parsed = textline.parse(line)
    if parsed is None:
        return None
    return Record(*parsed, file=file, raw=line)


# A JSON or ECS line of ours starts with its time: read it without parsing the object.
_JSON_TIME = re.compile(r'\{"@?timestamp": ?"([0-9T:.+Z-]{19,40})"')


def line_time(line: str) -> datetime | None:
    """When a line was written, for less than parsing it whole (of a text line, its head only;
    of a JSON or ECS line, its first key when that is the time, as our formatters write it)."""
    if line.startswith("{"):
        match = _JSON_TIME.match(line)
        if match is not None:
            try:
                return _utc(datetime.fromisoformat(match.group(1).replace("Z", "+00:00")))
            except ValueError:
                pass
        record = parse_line(line)
        return None if record is None else record.time
    head = textline.parse(line.partition(textline.SEPARATOR)[0])
    return None if head is None else head.time


_DIGITS = frozenset(b"0123456789")
_JSON_TIME_BYTES = re.compile(rb'\{"@?timestamp": ?"([0-9T:.+Z-]{19,40})"')


def quick_time(raw: bytes) -> datetime | None:
    """When a line of ours was written, from its first bytes alone (a microsecond or two);
    None when they are not laid out as our text, JSON or ECS lines start."""
    if raw[:1] == b"{":
        match = _JSON_TIME_BYTES.match(raw)
        if match is None:
            return None
        try:
            return _utc(datetime.fromisoformat(match.group(1).decode().replace("Z", "+00:00")))
        except ValueError:
            return None
    # "2026-11-26 12:00:00,123 ": the text layout's head
    if len(raw) < 24 or raw[4:5] != b"-" or raw[10:11] != b" " or raw[19:20] != b",":
        return None
    digits = raw[0:4] + raw[5:7] + raw[8:10] + raw[11:13] + raw[14:16] + raw[17:19] + raw[20:23]
    if not _DIGITS.issuperset(digits) or raw[23:24] != b" ":
        return None
    return textline.stamp_time(raw)


def raw_line_time(raw: bytes) -> datetime | None:
    """`line_time` of a line's bytes (`quick_time` when it can tell)."""
    return quick_time(raw) or line_time(raw.decode("utf-8", errors="replace"))


def request_id_needles(request_id: str) -> tuple[bytes, ...]:
    """What a line holds when its request ID is `request_id`, as a whole value, in every
    layout read here: ` request_id=<id> ` in a text line (or at its end), and
    `id":"<id>"` in a JSON line (`"request_id"`) and an ECS line (`"http":{"request":{"id"`
    or `"http.request.id"`), with or without a space after the colon, the value as
    escaped and as given, in ASCII JSON and in UTF-8.

    A line found by them is then parsed and kept only when its request ID is the one asked
    for; a line that does not hold one is never read further (the ID `.` finds nothing).
    """
    needles: list[bytes] = []
    for value in dict.fromkeys((request_id, escape(request_id))):
        field = textline.render_field("request_id", value).encode()
        needles += [field + b" ", field + b"\n"]
        for ascii_only in (True, False):
            quoted = json.dumps(value, ensure_ascii=ascii_only).encode()
            needles += [b'id":' + quoted, b'id": ' + quoted]
    return tuple(dict.fromkeys(needles))


def _parse_json(line: str, file: str) -> Record | None:
    try:
        data = json.loads(line)
        if "@timestamp" in data:
            return _from_ecs(data, file, line)
        when = _utc(datetime.fromisoformat(data.pop("timestamp")))
        level = str(data.pop("level"))
        logger = str(data.pop("logger"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    message = str(data.pop("message", ""))
    traceback = read_plain_traceback(str(data.pop("exc_info", "") or ""))
    return Record(when, level, logger, message, data, traceback, file, line)


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


# ECS fields that are the record itself, not one of its fields.
_ECS_OWN = frozenset(
    {"@timestamp", "log.level", "log.logger", "message", "error.stack_trace", "ecs.version"}
)


def _from_ecs(data: dict[str, Any], file: str, line: str) -> Record:
    """An ECS object (nested or dotted keys) as a Record with our field names."""
    flat = _flatten(data)
    when = _utc(datetime.fromisoformat(str(flat["@timestamp"]).replace("Z", "+00:00")))
    fields: dict[str, Any] = {}
    for key, value in flat.items():
        if key in _ECS_OWN or key == "log.original":  # log.original repeats the message
            continue
        if key == ecs.DURATION_FIELD and isinstance(value, int | float):
            fields["duration"] = value / ecs.NANOSECONDS
        elif key in ecs.OURS:
            fields[ecs.OURS[key]] = value
        elif key.startswith(ecs.LABELS + "."):
            fields[key[len(ecs.LABELS) + 1 :]] = value
        else:
            fields[key] = value
    traceback = str(flat.get("error.stack_trace") or "")
    if "\n" in traceback:  # ecs-logging writes the traceback as it is: escape it as ours are
        traceback = escape_traceback(traceback, bar=False)
    level = str(flat["log.level"]).upper()
    logger = str(flat.get("log.logger", "-"))
    return Record(when, level, logger, str(flat.get("message", "")), fields, traceback, file, line)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"http": {"request": {"id": "r"}}, "log.level": "info"}` -> dotted keys only."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
