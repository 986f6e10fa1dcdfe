"""Template filters of the trace viewer: show hostile text as text.

The template engine escapes HTML; these make the characters that HTML escaping leaves alone
visible too (control characters, bidi overrides that reorder what a reader sees), using the
same escapes as the log files. They return plain strings: autoescaping still applies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template

from observability.masking.escaping import escape as escape_unsafe

register = template.Library()


@register.filter
def visible(value: Any) -> str:
    """One line of untrusted text, with every control and bidi character escaped."""
    return escape_unsafe(str(value))


@register.filter
def visible_lines(value: Any) -> str:
    """Several lines (a traceback): each line as `visible`, the line breaks kept."""
    return "\n".join(escape_unsafe(line) for line in str(value).split("\n"))


@register.filter
def milliseconds(value: float | None) -> str:
    """Seconds as milliseconds for the page (`0.0217` -> `21.7 ms`)."""
    if value is None:
        return "-"
    ms = value * 1000
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


@register.filter
def last_line(value: Any) -> str:
    """The last non-empty line of a traceback: the exception and its message."""
    lines = [line for line in str(value).splitlines() if line.strip()]
    return escape_unsafe(lines[-1]) if lines else ""


@register.filter
def clock(value: datetime) -> str:
    """A UTC time to the millisecond: `17:00:27.041`."""
    return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
