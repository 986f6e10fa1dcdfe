r"""One redaction policy: card numbers, JWTs, credentials and secret values never reach a log.

`Redactor.text()` masks, in this order (each step sees the previous step's output):

1. Card numbers. A run of digits and separators is replaced by `****` and its last four
   digits when a window of 13-19 of its digits passes Luhn. A digit is any Unicode digit
   (`str.isdigit`: the decimal digits of every script, superscripts and the like), written
   raw or as the backslash escape Django writes for non-ASCII text (`\uff14`,
   `\U0001d7d8`, `\x34`). A separator is any character that is not a letter or a digit
   (whitespace, format characters such as U+200B, punctuation, symbols, `_`, `\`), or an
   escape of one (`\n`, `\u00a0`). A letter, or an escape of one, ends the run. Escapes
   are read both ways, decoded and raw, because a reader may do either: `\u4111` is a
   letter decoded but the digits 4111 raw. Cards go first: a later step that cut a card
   short (`password=4111 1111 ...`) would leave more than four of its digits behind.
2. JWTs (`eyJ...` then two more dot-separated base64url segments), wherever they start.
3. `Bearer`/`Basic`/`Token` credentials.
4. `key=value`, `key: value` and `"key": "value"` pairs whose key is sensitive (a
   REDACT_KEYS entry as a word of the key: `api_key`, `X-Api-Key`, `cardNumber`), after
   any prefix; a quoted value is masked up to its closing quote.

Masking is idempotent and runs before any length cap (`limit`), so a cap can never cut
a card in two and leave the first part unmasked.
Why the card engine is linear and cheap: `observability.masking.cards`. Which keys are
sensitive and where their values end: `observability.masking.keys`. A text longer than
MAX_SCAN is cut first (`observability.masking.cut`); a query string's parts are masked
together (`observability.masking.query`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from django.core.exceptions import ImproperlyConfigured

from observability.conf import DEFAULT_REDACT_KEYS, obs_settings, on_reload
from observability.masking.cut import _B64, cut
from observability.masking.keys import REDACTED, KeyPolicy
from observability.masking.percent import mask_cards
from observability.masking.query import encode, mask_straddling_cards
from observability.memo import Memo

#: Characters of one text that are scanned; the rest is dropped (and counted in the marker).
MAX_SCAN = 1 << 20
MEMO_TEXT_LENGTH = 384  # ASCII texts up to this long are remembered masked ...
MEMO_SIZE = 4096  # ... this many at most
_MAX_DEPTH = 8
# The first `eyJ` of a base64url run, then two more segments (and any after them). Only a
# run's start can begin a match, so a run without a JWT is scanned once, not once per `eyJ`.
_JWT = re.compile(
    rf"(?<![{_B64}])((?:(?!eyJ)[{_B64}])*+)eyJ[{_B64}]*+\.[{_B64}]++\.[{_B64}]*+"
    rf"(?:\.[{_B64}]*+)*+"
)
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic|token)(\s++)[A-Za-z0-9._~+/=*\-]{6,}+")


def _cap(text: str, limit: int | None, dropped: int = 0) -> str:
    """Keep the first `limit` characters and say how many were cut (escaping.cap's marker)."""
    if limit is not None and len(text) > limit:
        dropped += len(text) - limit
        text = text[:limit]
    return f"{text}...[{dropped} more chars]" if dropped else text


# ---------------------------------------------------------------------------- the policy


class Redactor(KeyPolicy):
    """The policy, compiled for one list of sensitive key names."""

    is_null = False

    def __init__(self, keys: Iterable[str]) -> None:
        super().__init__(keys)
        # Masked texts by (text, limit): user agents, paths and usernames repeat from one
        # request to the next. Short ASCII texts only (a few MB at most, full); emptied
        # when full, so a flood of new texts costs one insert each and never grows it.
        self._memo: Memo[tuple[str, int | None], str] = Memo(MEMO_SIZE)

    def _mask(self, text: str) -> str:
        text = mask_cards(text)
        if "eyJ" in text:
            text = _JWT.sub(rf"\g<1>{REDACTED}", text)
        lowered = text.lower()
        if "bearer" in lowered or "basic" in lowered or "token" in lowered:
            text = _CREDENTIAL.sub(rf"\1\2{REDACTED}", text)
        if "=" in text or ":" in text:
            squashed = lowered.replace("_", "").replace("-", "")
            if any(word in squashed for word in self._squashed_words):
                text = self._mask_pairs(text)
        return text

    def text(self, text: str, limit: int | None = None) -> str:
        """Mask card numbers, JWTs, credentials and secret values in `text`, then cap it.

        At most MAX_SCAN characters are scanned (the rest is dropped and counted in the
        marker); `limit` caps the masked text the way escaping.cap() does.
        """
        if len(text) <= MEMO_TEXT_LENGTH and len(text) <= MAX_SCAN and text.isascii():
            key = (text, limit)
            masked = self._memo.get(key)
            if masked is None:
                masked = self._memo.keep(key, _cap(self._mask(text), limit, 0))
            return masked
        dropped = 0
        if len(text) > MAX_SCAN:
            dropped = len(text) - MAX_SCAN
            text = cut(text, MAX_SCAN)
        return _cap(self._mask(text), limit, dropped)

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
            # A key is text too (`{"4111 1111 1111 1111": 1}` from a client's JSON): masked.
            return {
                (self.text(key) if type(key) is str else key): REDACTED
                if self.is_sensitive_key(str(key))
                else self.value(item, depth + 1)
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
        """Redact one named field: REDACTED if its name is sensitive, else its value masked."""
        return REDACTED if self.is_sensitive_key(key) else self.value(value)

    def query_string(self, query: str, limit: int | None = None) -> str:
        """Mask a raw query string and re-encode it, then cap it.

        Keys are masked like values (`?4111111111111111`, `?<JWT>`); a sensitive key's
        value becomes REDACTED. A card number written across `=` or `&` is masked too.
        """
        return self._query(None, query, limit)

    def url(self, path: str, query: str, limit: int | None = None) -> str:
        """Mask a path and its raw query string as one `path?query`, then cap it.

        Masked apart, a card written across the `?` (`/pay/41111111/?11111111`) would
        survive in two halves, neither of them a card; this sees both.
        """
        if not query:
            return self.text(path, limit)
        return self._query(path, query, limit)

    def _query(self, path: str | None, query: str, limit: int | None) -> str:
        dropped = 0
        if path is not None and len(path) > MAX_SCAN:
            dropped += len(path) - MAX_SCAN
            path = cut(path, MAX_SCAN)
        if len(query) > MAX_SCAN:
            dropped += len(query) - MAX_SCAN
            query = cut(query, MAX_SCAN)
        pairs = parse_qsl(query, keep_blank_values=True)
        parts = [part for pair in pairs for part in pair]
        separators = ["=", "&"] * len(pairs)
        if path is not None:
            parts.insert(0, path)
            separators.insert(0, "?")
        mask_straddling_cards(parts, separators)
        if path is not None:
            path = parts.pop(0)
        if pairs:
            encoded = "&".join(
                f"{encode(self._mask(key))}="
                + (REDACTED if self.is_sensitive_key(key) else encode(self._mask(value)))
                for key, value in zip(parts[::2], parts[1::2], strict=True)
            )
        else:  # only `&`s, or nothing
            encoded = encode(self._mask(unquote_plus(query)), safe="&=")
        return _cap(encoded if path is None else f"{self._mask(path)}?{encoded}", limit, dropped)


class NullRedactor:
    """Redactor's twin for when redaction is off: everything passes as is; only `limit` caps."""

    is_null = True

    def text(self, text: str, limit: int | None = None) -> str:
        return _cap(text, limit)

    def value(self, value: Any, depth: int = 0) -> Any:
        return value

    def field(self, key: str, value: Any) -> Any:
        return value

    def is_sensitive_key(self, key: str) -> bool:
        return False

    def query_string(self, query: str, limit: int | None = None) -> str:
        return _cap(query, limit)

    def url(self, path: str, query: str, limit: int | None = None) -> str:
        return _cap(f"{path}?{query}" if query else path, limit)


_redactor: Redactor | NullRedactor | None = None


@functools.cache
def _default_redactor() -> Redactor:
    return Redactor(DEFAULT_REDACT_KEYS)


def get_redactor() -> Redactor | NullRedactor:
    """The policy for the current settings: a NullRedactor when REDACT is off.

    Callers never check REDACT themselves: they call the object this returns.
    """
    global _redactor
    if _redactor is None:
        try:
            redact, keys = obs_settings.REDACT, obs_settings.REDACT_KEYS
        except ImproperlyConfigured:  # a server logging before Django is set up
            return _default_redactor()
        _redactor = Redactor(keys) if redact else NullRedactor()
    return _redactor


@on_reload
def _forget_redactor() -> None:
    global _redactor
    _redactor = None
