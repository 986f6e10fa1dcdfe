"""A text line's fields read from its bytes, and the numbers they hold, for the overview.

A text line's values hold no space unless quoted, so when the fields part holds no quote,
` key=` starts a field and the value runs to the next space: found by `bytes.rfind`, without
splitting the line (the last one wins, as parsing does). A line with a quoted value is parsed
(`lines.textline.parse_fields`), so a quoted username holding ` status=503` forges nothing.
"""

from __future__ import annotations

import math
from datetime import datetime

from observability.lines.textline import SEPARATOR, parse_fields

_SEP = SEPARATOR.encode()


def stamp(when: datetime) -> bytes:
    """A time as a text line starts: `2026-11-26 12:00:00,000` (they compare as times)."""
    return (when.strftime("%Y-%m-%d %H:%M:%S,") + f"{when.microsecond // 1000:03d}").encode()


def text_fields(rest: bytes, keys: tuple[bytes, ...]) -> list[str | None]:
    """Some fields of a text line's middle part: by search when no value is quoted (values
    then hold no space, so ` key=` starts a field; the last one wins, as parsing does)."""
    middle = rest.partition(_SEP)[0]
    if b'"' in middle:
        parsed = parse_fields(middle.decode("utf-8", errors="replace"))
        return [parsed.get(key[1:-1].decode()) for key in keys]
    middle = b" " + middle
    found: list[str | None] = []
    for key in keys:
        at = middle.rfind(key)
        if at == -1:
            found.append(None)
            continue
        at += len(key)
        end = middle.find(b" ", at)
        found.append(middle[at : None if end == -1 else end].decode("utf-8", errors="replace"))
    return found


def finite_number(value: object) -> float | None:
    """A value as a finite float (None for anything else: text, NaN, infinities)."""
    try:
        found = float(str(value))
    except ValueError:
        return None
    return found if math.isfinite(found) else None


def weight_of(sample_rate: object) -> float:
    """How many requests a line stands for: 1 / its sample_rate (1 without a valid one)."""
    rate = finite_number(sample_rate) if sample_rate is not None else None
    return 1.0 / rate if rate is not None and 0.0 < rate < 1.0 else 1.0


def epoch_ms(when: datetime) -> int:
    """A time as epoch milliseconds (how the story page's `?at=` names a request)."""
    return int(when.timestamp() * 1000)


def event_count(repeated: object) -> int:
    """A line is one event; a flood-control summary stands for its `repeated=` count."""
    if repeated is None:
        return 1
    text = str(repeated)
    return int(text) if text.isdigit() and len(text) <= 12 else 1
