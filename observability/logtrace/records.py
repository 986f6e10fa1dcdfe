"""A log line read back as a Record: text lines (observability.textline) and JSON lines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from observability import textline


@dataclass
class Record:
    time: datetime
    level: str
    logger: str
    message: str
    fields: dict[str, Any]
    traceback: str
    file: str
    raw: str
    order: int = 0

    @property
    def request_id(self) -> str:
        return str(self.fields.get("request_id", "-"))

    @property
    def is_json(self) -> bool:
        return self.raw.startswith("{")

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "timestamp": self.time.isoformat(timespec="milliseconds"),
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
            "fields": self.fields,
            "traceback": self.traceback or None,
        }


def parse_line(line: str, file: str = "") -> Record | None:
    """A text or JSON line of ours as a Record; None for anything else."""
    line = line.rstrip("\n")
    if line.startswith("{"):
        return _parse_json(line, file)
    parsed = textline.parse(line)
    if parsed is None:
        return None
    return Record(*parsed, file=file, raw=line)


def _parse_json(line: str, file: str) -> Record | None:
    try:
        data = json.loads(line)
        when = datetime.fromisoformat(data.pop("timestamp"))
        level = str(data.pop("level"))
        logger = str(data.pop("logger"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    message = str(data.pop("message", ""))
    traceback = str(data.pop("exc_info", "") or "")
    return Record(when, level, logger, message, data, traceback, file, line)
