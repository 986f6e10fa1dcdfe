"""One escaping rule for untrusted text, so that one record is always one line (CWE-117).

C0 controls, DEL, C1 controls (NEL included), U+2028/U+2029 and the bidi controls
become visible escapes (\\n, \\x1b, \\u2028); every such field has a length cap.
In text lines "|" separates the message, the fields and the traceback, so it is written
as \\x7c inside any of them. A traceback's backslashes are doubled before escaping, so
that reading it back (`unescape_traceback`) restores its line breaks and nothing else.
"""

from __future__ import annotations

import re

# Fields a client controls, and how much of each a record keeps.
PATH_LIMIT = 2048
QUERY_LIMIT = 2048
USER_AGENT_LIMIT = 512
USERNAME_LIMIT = 150
VALUE_LIMIT = 4096
ARG_LIMIT = 1024  # each string argument of a log call, before it is merged into the message
MESSAGE_LIMIT = 4096
TRACEBACK_LIMIT = 32768
TRACEBACK_LINE_LIMIT = 1024

#: The characters that break a line or hide text: C0, DEL, C1, U+2028/9, bidi controls, BOM.
UNSAFE_CHARS = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
_UNSAFE = re.compile(f"[{UNSAFE_CHARS}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def cap(text: str, limit: int) -> str:
    """Keep the first `limit` characters and say how many were cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more chars]"


def escape(text: str, limit: int | None = None) -> str:
    """Return `text` capped to `limit` characters with every line-breaking character escaped."""
    if limit is not None:
        text = cap(text, limit)
    if text.isprintable() or _UNSAFE.search(text) is None:  # every unsafe one is unprintable
        return text
    return _UNSAFE.sub(_escape_char, text)


def escape_bar(text: str, limit: int | None = None) -> str:
    """Escape text for a text line: one line, and no "|" (the parts' separator)."""
    return escape(text, limit).replace("|", "\\x7c")


def escape_traceback(text: str, *, bar: bool = True) -> str:
    """A traceback as one line: every line capped, backslashes doubled, then escaped.

    `bar=False` keeps "|" as it is (JSON lines have no parts to separate).
    """
    lines = text.split("\n")
    if any(len(line) > TRACEBACK_LINE_LIMIT for line in lines):
        text = "\n".join(cap(line, TRACEBACK_LINE_LIMIT) for line in lines)
    if len(text) > TRACEBACK_LIMIT:  # keep the end: the exception itself is the last line
        text = f"...[{len(text) - TRACEBACK_LIMIT} chars before]" + text[-TRACEBACK_LIMIT:]
    text = text.replace("\\", "\\\\")
    return escape_bar(text) if bar else escape(text)


_TRACEBACK_ESCAPE = re.compile(r"\\(\\|n|x7c)")
_TRACEBACK_DECODED = {"\\": "\\", "n": "\n", "x7c": "|"}


def unescape_traceback(text: str) -> str:
    """Read back what escape_traceback wrote: line breaks, "|" and backslashes only.

    Every other escape (\\x1b, \\u202e ...) stays visible: a terminal never gets a raw
    control character from a log file.
    """
    return _TRACEBACK_ESCAPE.sub(lambda m: _TRACEBACK_DECODED[m.group(1)], text)
