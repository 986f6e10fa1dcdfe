"""One request's records as the story page draws them: on one time axis, one lane per file,
and one lane per background task the request set off (`task:<first 8 of its ID>`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from observability.logtrace import LEVELS, Record
from observability.masking.escaping import unescape_traceback

EMPTY = "-"
_LANE_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Mark:
    """A record, and where it sits on the request's time axis."""

    index: int
    record: Record
    offset_ms: float

    @property
    def level_class(self) -> str:
        """The level as a CSS class name; a level we do not know is `other`."""
        return self.record.level.lower() if self.record.level in LEVELS else "other"

    @property
    def lane(self) -> str:
        """The record's file, or for a task's record the task's own lane."""
        task_id = self.record.fields.get("task_id")
        if task_id is None or task_id == EMPTY:
            return self.record.lane
        return "task:" + _LANE_UNSAFE.sub("", str(task_id))[:8]

    @property
    def fields(self) -> list[tuple[str, str]]:
        return [(str(key), _text(value)) for key, value in self.record.fields.items()]

    @property
    def traceback(self) -> str:
        """The traceback with its line breaks back."""
        return unescape_traceback(self.record.traceback) if self.record.traceback else ""


def marks(records: list[Record], start: datetime) -> list[Mark]:
    return [
        Mark(i, record, (record.time - start).total_seconds() * 1000)
        for i, record in enumerate(records)
    ]


def field_values(records: list[Record]) -> dict[str, list[str]]:
    """Field name -> its distinct values in these records (what the admin links look up)."""
    values: dict[str, list[str]] = {}
    for record in records:
        for key, value in record.fields.items():
            text = _text(value)
            if text != EMPTY and text not in values.setdefault(key, []):
                values[key].append(text)
    return values


def _text(value: Any) -> str:
    if value is None:
        return EMPTY
    return value if isinstance(value, str) else str(value)


def lanes_of(records: list[Mark], files: tuple[str, ...]) -> list[str]:
    """The lanes to draw: the files in their usual order, then each task's as it started."""
    present = {mark.lane for mark in records}
    tasks = list(dict.fromkeys(m.lane for m in records if m.lane.startswith("task:")))
    others = sorted(present - set(files) - set(tasks))
    return [lane for lane in files if lane in present] + others + tasks
