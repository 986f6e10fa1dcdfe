# A verbatim copy of observability/masking/redaction.py at 3b6766a (before issue #10), for bench/redaction_bench.py.
"""One redaction policy: sensitive keys, card numbers, JWTs and bearer tokens never reach a log.

- Keys: a value whose key matches REDACT_KEYS (as a word of the key: `access_token`,
  `X-Api-Key`, `cardNumber`) is replaced by REDACTED, at any depth.
- Values: card numbers (13-19 digits, any Unicode digits, spaces or dashes between,
  passing Luhn) keep at most their last four digits; JWTs and `Bearer ...` are masked;
  `password=...`-style pairs in free text lose their value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_plus

REDACTED = "[REDACTED]"
_MAX_DEPTH = 8

# A run of digits, each optionally preceded by one space or dash: always a maximal run.
_DIGIT_RUN = re.compile(r"\d(?:[ \-]?\d){12,}")
# `password=secret`, `"token": "abc"`, `api-key: abc` in free text; the key is checked after.
_PAIR = re.compile(
    r"""(?<![A-Za-z0-9_\-])([A-Za-z][A-Za-z0-9_\-]*+)(['"]?\s*[:=]\s*['"]?)([^\s&'",;}\]]+)"""
)
_LONG_DIGITS = re.compile(r"\d[\d \-]{11}")  # cheap pre-check for _DIGIT_RUN
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=\-]{6,}")


def _digit_value(char: str) -> int:
    return unicodedata.digit(char)


def _luhn_ok(values: list[int]) -> bool:
    total = 0
    for index, value in enumerate(reversed(values)):
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _contains_card(values: list[int]) -> bool:
    count = len(values)
    if count > 64:
        return True  # far longer than any card: mask rather than scan every window
    for size in range(13, min(count, 19) + 1):
        for start in range(count - size + 1):
            if _luhn_ok(values[start : start + size]):
                return True
    return False


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    digits = [char for char in run if char not in " -"]
    if not _contains_card([_digit_value(char) for char in digits]):
        return run
    return "****" + "".join(digits[-4:])


def mask_cards(text: str) -> str:
    return _DIGIT_RUN.sub(_mask_run, text)


class Redactor:
    """The policy, compiled for one list of sensitive key names."""

    def __init__(self, keys: Iterable[str]) -> None:
        words = sorted({_normalise(key) for key in keys if key}, key=len, reverse=True)
        alternatives = "|".join(re.escape(word) for word in words) or r"(?!)"
        self._key = re.compile(rf"(?:^|_)(?:{alternatives})(?:_|$)")
        # Substring checks decide if a text needs any work (most log text does not): a
        # case-insensitive regex alternation of these words costs ~40 µs a message here.
        # On lower-cased text without _ and -: a sensitive word closely followed by : or =
        # (`password=`, `"api_key": `); only then is the key=value pass worth running.
        squashed = sorted({word.replace("_", "") for word in words}, key=len, reverse=True)
        self._word_pair = re.compile("(?:" + "|".join(map(re.escape, squashed)) + ")['\"]?\\s*[:=]")
        self.is_sensitive_key = lru_cache(maxsize=4096)(self._is_sensitive_key)

    def _is_sensitive_key(self, key: str) -> bool:
        return self._key.search(_normalise(key)) is not None

    def _pair_repl(self, match: re.Match[str]) -> str:
        if match.group(3).startswith(REDACTED[:-1]) or not self.is_sensitive_key(match.group(1)):
            return match.group()
        return match.group(1) + match.group(2) + REDACTED

    def text(self, text: str) -> str:
        """Mask card numbers, JWTs, bearer tokens and key=value secrets in free text."""
        # Cheap checks decide which patterns can match at all: most log text needs none.
        if _LONG_DIGITS.search(text) is not None:
            text = mask_cards(text)
        if "eyJ" in text:
            text = _JWT.sub(REDACTED, text)
        squashed = text.lower().replace("_", "").replace("-", "")
        if "bearer" in squashed or "basic" in squashed or "token" in squashed:
            text = _BEARER.sub(rf"\1\2{REDACTED}", text)
        if ("=" in text or ":" in text) and self._word_pair.search(squashed) is not None:
            text = _PAIR.sub(self._pair_repl, text)
        return text

    def value(self, value: Any, depth: int = 0) -> Any:
        """Redact a value of any shape: strings are masked, mappings by key, at any depth."""
        kind = type(value)
        if kind is str:
            return self.text(value)
        if kind is int:
            return value if -(10**12) < value < 10**12 else self.text(str(value))
        if kind is float or kind is bool or value is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if depth >= _MAX_DEPTH:
            return value if isinstance(value, int | float | bool | type(None)) else REDACTED
        if isinstance(value, Mapping):
            return {
                key: REDACTED if self.is_sensitive_key(str(key)) else self.value(item, depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return type(value)(self.value(item, depth + 1) for item in value)
        if isinstance(value, int | float | bool | type(None)):
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
                return self.text(str(value))
            return value
        return self.text(str(value))

    def field(self, key: str, value: Any) -> Any:
        return REDACTED if self.is_sensitive_key(key) else self.value(value)

    def query_string(self, query: str) -> str:
        """Mask a raw query string: sensitive parameters lose their value, the rest is masked."""
        if not query:
            return query
        pairs = parse_qsl(query, keep_blank_values=True)
        if not pairs:
            return self.text(unquote_plus(query))
        return "&".join(
            f"{quote(key, safe='')}={REDACTED if self.is_sensitive_key(key) else self.text(v)}"
            for key, v in pairs
        )


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _normalise(key: str) -> str:
    return _NON_WORD.sub("_", _CAMEL.sub("_", key).lower()).strip("_")
