"""Cutting a text too long to scan (redaction's MAX_SCAN) so that nothing it splits survives."""

from __future__ import annotations

import re

from observability.masking.card_tokens import (
    _DIGIT_TOKEN,
    _DIGITS,
    _SEPARATOR_TOKEN,
    BLANK_LETTERS,
    _matched,
)
from observability.masking.cards import _MASK
from observability.masking.keys import REDACTED

_B64 = "A-Za-z0-9_*\\-"  # '*': a card masked inside a JWT (****1111) must not hide the rest
_B64_DOT_REVERSED = re.compile(rf"[{_B64}.]*+")
_RUN_START = re.compile(_DIGIT_TOKEN)
# A percent-escape, maybe encoded again (`%2F`, `%252F`): decoded, a digit or a separator.
_PERCENT_TOKEN = r"%(?:25)*[0-9A-Fa-f]{2}"
# Reads tokens to the end; group 1 is the last character that ends a run (a letter).
_LAST_LETTER = re.compile(
    rf"(?:{_PERCENT_TOKEN}|{_DIGIT_TOKEN}|{_SEPARATOR_TOKEN}|(.))*+", re.DOTALL
)
# Characters an escape or a run is made of, for finding (backwards) where a run may start.
_RUN_CHARS_REVERSED = re.compile(rf"(?:[^\w]|[{_DIGITS}{BLANK_LETTERS}_A-Fa-fxuUntr])*+")
_PARTIAL_ESCAPE = re.compile(r"\\(?:x[0-9A-Fa-f]?|u[0-9A-Fa-f]{0,3}|U[0-9A-Fa-f]{0,7})\Z")


def cut(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters (MAX_SCAN) and mask whole what the cut may have split.

    The rest of a digit run that reaches the cut is never scanned, so the visible part
    of it is masked whatever it holds (`****`, no digits kept); likewise a JWT cut short.
    """
    text = text[:limit]
    end = len(text)
    partial = _PARTIAL_ESCAPE.search(text, max(0, end - 9))
    if partial is not None:
        end = partial.start()
    # The run touching the cut starts after the last letter that is not part of an escape;
    # look for that letter only where a run could be (cheap, backwards), then tokenise.
    region = end - _matched(_RUN_CHARS_REVERSED, text[end - 1 :: -1] if end else "").end()
    scan = _matched(_LAST_LETTER, text, region, end)
    after_letter = scan.end(1) if scan.start(1) >= 0 else region
    first = _RUN_START.search(text, after_letter, end)
    if first is not None:
        text = text[: first.start()] + _MASK
    elif partial is not None:
        text = text[:end] + _MASK
    tail = len(text) - _matched(_B64_DOT_REVERSED, text[::-1]).end()
    jwt = text.find("eyJ", tail)
    if jwt >= 0:
        text = text[:jwt] + REDACTED
    return text
