"""The text line format, written and read by the same code.

    <time> <LEVEL> [<logger>] <message> | <key>=<value> <key>=<value> ... [| <traceback>]

One record is one line, and " | " only ever separates its parts: the message, the
values and the traceback are escaped (`observability.masking.escaping`) and "|" inside any of
them is written as `\\x7c`. A value is quoted when it holds whitespace, a quote or "=";
a key holds only letters, digits, `_`, `.` and `-`. So any line the formatters write is
read back by `parse()` into the same message, fields and traceback (a round-trip
property test holds both sides to it), and no value a client chooses can end the fields
or start a record of its own.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

from observability.masking.escaping import MESSAGE_LIMIT, VALUE_LIMIT, escape_bar
from observability.memo import Memo

SEPARATOR = " | "
#: An absent value (None) as text: the seed's grep recipes read `user_id=-`.
ABSENT = "-"
# Quoted when it holds whitespace (any: the reader splits on it), a quote or "=".
_NEEDS_QUOTES = re.compile(r'[\s"=]')
_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9_.\-]")


# The checks below run on every value of every line, so they are str methods (C loops)
# rather than a pattern: every character that needs escaping (UNSAFE_CHARS) or quoting
# (whitespace) is either not printable (str.isprintable) or one of ' "=|'. A test holds
# this over every code point; a text the quick check turns away gets the exact one.
def _plain_value(text: str) -> bool:
    """Whether a non-empty value is written as it is: nothing to escape or quote."""
    return (
        text.isprintable()
        and " " not in text
        and '"' not in text
        and "=" not in text
        and "|" not in text
    )


def render_message(message: str) -> str:
    """The message part: capped, escaped, "|" written as \\x7c."""
    if len(message) <= MESSAGE_LIMIT and message.isprintable() and "|" not in message:
        return message
    return escape_bar(message, MESSAGE_LIMIT)


def render_value(value: Any) -> str:
    """One value: escaped ("|" too), capped, quoted when it holds whitespace, a quote or =."""
    kind = type(value)
    if kind is str:
        if len(value) <= VALUE_LIMIT and value and _plain_value(value):
            return value  # type: ignore[no-any-return]
        if len(value) <= _MEMO_TEXT_LENGTH and value.isascii():  # a user agent: quoted
            rendered = _rendered_texts.get(value)
            if rendered is None:
                rendered = _rendered_texts.keep(value, _render_text(value))
            return rendered
        return _render_text(value)
    if value is None:
        return ABSENT
    if kind is int or kind is float or kind is bool:
        return str(value)
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict | list | tuple):
        try:
            text = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            text = str(value)
    else:
        text = str(value)
    return _render_text(text)


# Rendered texts that needed work, by text: short ASCII ones only, so that even full of
# hostile texts (each escape four characters) the table stays under 8 MB.
_MEMO_TEXT_LENGTH = 384
_MEMO_SIZE = 4096
_rendered_texts: Memo[Any, str] = Memo(_MEMO_SIZE, {None: ABSENT})


def _render_text(text: str) -> str:
    text = escape_bar(text, VALUE_LIMIT)
    if not text:
        return '""'
    if _NEEDS_QUOTES.search(text) is None:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_key(key: str) -> str:
    """A field name as a key: letters, digits, _ . - only (others become _), at most 64."""
    key = key[:64]
    if _UNSAFE_KEY.search(key) is not None:
        key = _UNSAFE_KEY.sub("_", key)
    if not key or not (key[0].isalpha() or key[0] == "_"):
        key = "_" + key
    return key


_rendered_keys: dict[str, str] = {}


def render_field(key: str, value: Any) -> str:
    """` key=value`, as appended after the message."""
    rendered = _rendered_keys.get(key)
    if rendered is None:
        rendered = render_key(key)
        if len(_rendered_keys) < 4096:  # field names are few; a flood of new ones is not kept
            _rendered_keys[key] = rendered
    return f" {rendered}={render_value(value)}"


#: Key set -> [" k1=", "", " k2=", "", ...]: the line's field part with a gap for each
#: value (copied, the gaps filled by one slice assignment, joined: half the work of
#: formatting a "%s" template, measured).
_templates: dict[tuple[str, ...], list[str]] = {}
# Texts as render_value writes them, by text: a request's repeated values (IP, method,
# path, route, user agent) are looked up, not checked again. Short ones only, so that even
# full of hostile texts (each escape four characters) the table stays under 8 MB; emptied
# when full, so a flood of new texts (every request's IDs) costs one insert each.
_texts: Memo[Any, str] = Memo(_MEMO_SIZE, {None: ABSENT})


def render_fields(keys: tuple[str, ...], values: tuple[Any, ...]) -> str:
    """` k1=v1 k2=v2 ...`: the text of render_field for each pair, joined.

    Texts seen lately are looked up in one C loop (a request's values repeat from one line
    and one request to the next: IP, method, path, route, user agent); the others (new
    texts, numbers, containers) are rendered one by one.
    """
    entry = _templates.get(keys)
    if entry is None:
        entry = []
        for key in keys:
            entry += (f" {render_key(key)}=", "")
        if len(_templates) < 1024:  # key sets are few; a flood of new ones is not kept
            _templates[keys] = entry
    try:
        texts: list[Any] = list(map(_texts.get, values))
    except TypeError:  # an unhashable value (a dict, a list): each is rendered
        texts = [None] * len(values)
    if None in texts:
        for index, text in enumerate(texts):
            if text is None:
                value = values[index]
                kind = type(value)
                if kind is str:  # render_value's first test, inlined: a new ID is plain
                    if value and len(value) <= VALUE_LIMIT and _plain_value(value):
                        text = value
                    else:
                        text = render_value(value)
                    if len(value) <= _MEMO_TEXT_LENGTH:
                        _texts.keep(value, text)
                    texts[index] = text
                elif kind is int or kind is float:
                    texts[index] = str(value)
                else:
                    texts[index] = render_value(value)
    parts = entry.copy()
    parts[1::2] = texts
    return "".join(parts)


# --- reading -----------------------------------------------------------------------

_HEADER = re.compile(
    r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"\[([^\]\s]+)\] "
)
_FIELD = re.compile(r'([A-Za-z_][A-Za-z0-9_.\-]*)=("(?:[^"\\]|\\.)*"|\S*)')


class TextLine(NamedTuple):
    time: datetime
    level: str
    logger: str
    message: str
    fields: dict[str, str]
    traceback: str


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def parse_fields(text: str) -> dict[str, str]:
    """The key=value fields of a line's middle part, quoted values unquoted."""
    if '"' not in text:  # no quoted value: plain splitting is several times faster
        return dict(part.partition("=")[::2] for part in text.split(" ") if "=" in part)
    return {key: _unquote(value) for key, value in _FIELD.findall(text)}


def stamp_time(stamp: str | bytes) -> datetime | None:
    """`2026-11-26 12:00:00,123` (text or bytes, laid out so) as a UTC time; None if it is
    no date. Slicing is ~5x faster than strptime, and this runs for every line read."""
    try:
        return datetime(
            int(stamp[0:4]),
            int(stamp[5:7]),
            int(stamp[8:10]),
            int(stamp[11:13]),
            int(stamp[14:16]),
            int(stamp[17:19]),
            int(stamp[20:23]) * 1000,
            tzinfo=UTC,
        )
    except ValueError:
        return None


def parse(line: str) -> TextLine | None:
    """A text line as written by our formatters; None for anything else."""
    match = _HEADER.match(line)
    if match is None:
        return None
    stamp, level, logger = match.groups()
    when = stamp_time(stamp)
    if when is None:
        return None
    message, _, rest = line[match.end() :].partition(SEPARATOR)
    fields, _, traceback = rest.partition(SEPARATOR)
    return TextLine(when, level, logger, message, parse_fields(fields), traceback)
