"""What a line shows besides its message and context: the context's later fields, the
details (in their own namespace), the call-site attributes a layout may add. Every format
uses these, so a detail named like a context field is renamed the same way everywhere."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from observability.lines.line import Line
from observability.tracing.context import CONTEXT_FIELDS

_CONTEXT_SET = frozenset(CONTEXT_FIELDS)
CONTEXT_COUNT = len(CONTEXT_FIELDS)
#: A Line's attributes a text layout can show after the fields, by their record names.
META: dict[str, Callable[[Line], Any]] = {
    "module": lambda line: line.site.module if line.site else None,
    "pathname": lambda line: line.site.pathname if line.site else None,
    "lineno": lambda line: line.site.lineno if line.site else None,
    "funcName": lambda line: line.site.funcName if line.site else None,
    "process": lambda line: line.process,
    "threadName": lambda line: line.thread,
}


def bound_fields(line: Line) -> list[tuple[str, Any]]:
    """The context's fields beyond CONTEXT_FIELDS (bound later), unless a field of the
    line's own has the same name (it wins, where the line gives it)."""
    context = line.context
    if len(context) == CONTEXT_COUNT:
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
        (f"details.{key}" if key in taken or key in _CONTEXT_SET or key in META else key, value)
        for key, value in details.items()
    ]
