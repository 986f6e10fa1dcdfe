"""One escaping rule for untrusted text, so that one record is always one line (CWE-117).

C0 controls, DEL, C1 controls (NEL included), U+2028/U+2029 and the bidi controls
become visible escapes (\\n, \\x1b, \\u2028); every such field has a length cap.
"""

from __future__ import annotations

import re

# Fields a client controls, and how much of each a record keeps.
PATH_LIMIT = 2048
QUERY_LIMIT = 2048
USER_AGENT_LIMIT = 512
USERNAME_LIMIT = 150
VALUE_LIMIT = 4096
MESSAGE_LIMIT = 16384
TRACEBACK_LIMIT = 65536

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
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape_char, text)
