"""The key policy: which keys are sensitive (a REDACT_KEYS entry as a word of the key, in
any case or spelling), where a key's value ends in `key=value`, `key: value` and
`"key": "value"` text, and those values masked (`KeyPolicy`)."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from functools import lru_cache

from observability.masking.card_tokens import _matched

#: What a secret value becomes.
REDACTED = "[REDACTED]"
# What follows a key: its closing quote or bracket, then `=` or `:`.
_SEPARATOR_SOURCE = r"""(?:\]|\\?["'])?\s*+[:=]\s*+"""
_SEPARATOR = re.compile(_SEPARATOR_SOURCE)
_SPACES = re.compile(r"\s*+")
# Up to a space or a delimiter; `[REDACTED]` is one piece, so a value already masked is seen
# whole. A `,` or `;` is part of the value unless a space, a closing bracket or the end follows
# it: `password=a,b;c` is one value, `{'pin': 1234, 'x': 1}` and `a=1; b=2` are lists.
_BARE_VALUE = re.compile(r"""(?:[^\s&'",;}\[\]]++|[,;](?![\s}\])]|\Z)|\[(?:REDACTED\])?)*+""")
#: Keys that hold a sensitive word but never a secret (normalised: lower case, `_` between
#: words): OAuth's `token_type` is "Bearer".
PUBLIC_KEYS = frozenset({"token_type"})
_QUOTED_BODY = {
    '"': re.compile(r'(?:[^"\\]++|\\.)*+', re.DOTALL),
    "'": re.compile(r"(?:[^'\\]++|\\.)*+", re.DOTALL),
}
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _value_span(text: str, start: int) -> tuple[int, int, int]:
    """Where the value at `start` begins and ends, and where scanning resumes after it.

    A quoted value runs to its closing quote (JSON escapes allowed), or to the end of
    the text when it is never closed; an unquoted one to a space or a delimiter.
    """
    char = text[start : start + 1]
    if char in _QUOTED_BODY:
        body_end = _matched(_QUOTED_BODY[char], text, start + 1).end()
        if text.startswith(char, body_end):
            return start + 1, body_end, body_end + 1
        return start + 1, len(text), len(text)
    if char == "\\" and text[start + 1 : start + 2] in _QUOTED_BODY:
        quote = text[start : start + 2]  # an escaped quote: JSON inside a JSON string
        close = text.find(quote, start + 2)
        if close < 0:
            return start + 2, len(text), len(text)
        return start + 2, close, close + 2
    end = _matched(_BARE_VALUE, text, start).end()
    return start, end, end


def _letters_trie(words: Iterable[str]) -> str:
    """A pattern for any of `words`, factored by common prefixes (one branch per first letter,
    so most characters fail at once), with any run of `_` and `-` allowed between letters."""
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault(word[0], []).append(word[1:])
    branches = []
    for first, rests in sorted(groups.items()):
        ends = "" in rests  # a word ends here: the longer ones add nothing to the test
        tail = "" if ends else "[_\\-]*" + _letters_trie(rests)
        branches.append(re.escape(first) + tail)
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


def _next_value(text: str, start: int, end: int, after: int) -> int | None:
    """Where a further value of the same secret starts, if the value just read looks like a key.

    `secret: password": "x"` or `secret: "password": "x"` (the value was a key, and a
    separator follows it), `secret: password="x y"` or `secret: password: x` (a bare
    value ending in `=` or `:`): the value the inner key names is masked too.
    """
    separator = _SEPARATOR.match(text, after)
    if separator is not None:
        return separator.end()
    if end > start and text[end - 1] in ":=" and after < len(text):
        return _matched(_SPACES, text, after).end()
    return None


def _normalise(key: str) -> str:
    return _NON_WORD.sub("_", _CAMEL.sub("_", key).lower()).strip("_")


# --- the policy for one list of keys ------------------------------------------------


class KeyPolicy:
    """Which keys are sensitive, compiled for one list of key names, and their values masked."""

    def __init__(self, keys: Iterable[str]) -> None:
        words = sorted({_normalise(key) for key in keys if key}, key=len, reverse=True)
        alternatives = "|".join(re.escape(word) for word in words) or r"(?!)"
        self._key = re.compile(rf"(?:^|_)(?:{alternatives})(?:_|$)")
        # A sensitive key, lower-cased without _ and -, contains one of these words: a
        # substring test per word is far cheaper than a regex over ordinary text.
        squashed = {word.replace("_", "") for word in words}
        self._squashed_words = tuple(
            sorted(word for word in squashed if not any(o != word and o in word for o in squashed))
        )
        # On ASCII-lower-cased text: a key run (starting where one starts) that holds one of
        # the words, its letters maybe split by _ or -, then a separator. Keys without such
        # a word never reach Python; is_sensitive_key() decides for the others.
        fuzzy = _letters_trie(self._squashed_words) if self._squashed_words else "(?!)"
        self._pair_key = re.compile(
            rf"(?<![a-z0-9_\-])(?=[a-z0-9_\-]*?{fuzzy})([a-z0-9_\-]++){_SEPARATOR_SOURCE}"
        )
        self.is_sensitive_key = lru_cache(maxsize=4096)(self._is_sensitive_key)

    def _is_sensitive_key(self, key: str) -> bool:
        normalised = _normalise(key)
        return normalised not in PUBLIC_KEYS and self._key.search(normalised) is not None

    def _mask_pairs(self, text: str) -> str:
        keys = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
        pieces: list[str] = []
        last = resume = 0
        while (match := self._pair_key.search(keys, resume)) is not None:
            resume = match.end()
            if not self.is_sensitive_key(text[match.start(1) : match.end(1)]):
                continue  # its value may hold a pair of its own: `Error: api_key=...`
            position: int | None = resume
            while position is not None:
                start, end, after = _value_span(text, position)
                if start < end and text[start:end] != REDACTED:
                    pieces.append(text[last:start])
                    pieces.append(REDACTED)
                    last = end
                position = _next_value(text, start, end, after)
            resume = after
        pieces.append(text[last:])
        return "".join(pieces)
