"""The card engine: where a run of digits and separators holds a card number (13-19 of its
digits passing Luhn), in every way a reader may read it (escapes decoded or raw, any
Unicode digit, blank-rendering letters as separators); `observability.masking.redaction`
explains the policy.

Why it is linear: no pattern can backtrack into what it consumed (possessive
quantifiers), and none can restart inside a run it already scanned (lookbehind-anchored
starts). A card candidate needs 13 digit tokens; an attempt starts only after a letter,
so a run is tried from its start, plus, for the raw reading, from the digits of at most
12 escapes in it when it fails (a run that succeeds is consumed whole). JWT and key=value
matches start only where a base64url or key run starts, and the key=value loop resumes
after each value it masked. Luhn windows are checked with prefix sums, at most seven
comparisons a digit, in runs of at most 64 digits (a longer run is masked whole). Text
longer than MAX_SCAN is cut first.

Why it is cheap on ordinary text: a C-speed translation answers "are there 13 digits with
no letter between them?" before any pattern runs; ASCII text without escapes (most of it)
is scanned as a same-length skeleton with plain-character patterns; the JWT, credential
and key=value passes run only when `eyJ`, one of their words, or `=`/`:` plus a sensitive
word appear. bench/redaction_bench.py measures both.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

from observability.masking.card_tokens import (
    _ASCII_DIGITS_ONLY,
    _CANDIDATE,
    _COMPACT_SKELETON,
    _COMPACT_SKELETON_WITH_ESCAPES,
    _DIGIT,
    _ESCAPE_SPLIT,
    _NON_ASCII,
    _SKELETON,
    _SKELETON_CANDIDATE,
    _THIRTEEN_DIGITS,
    BLANK_LETTERS,
)

_MASK = "****"
_LONGEST_SCANNED_RUN = 64  # digits; a longer run is masked whole without checking windows

# ---------------------------------------------------------------------------- cards

_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_IS_DIGIT, _IS_LETTER, _IS_SEPARATOR = 0, 1, 2


def _luhn_ok(values: list[int]) -> bool:
    """Say if `values` (digit values, most significant first) pass the Luhn check."""
    total = 0
    for index, value in enumerate(reversed(values)):
        total += _DOUBLED[value] if index % 2 else value
    return total % 10 == 0


def _holds_card(digits: Sequence[str]) -> bool:
    """Say if any 13-19 consecutive `digits` pass Luhn; a run over 64 digits always does."""
    count = len(digits)
    if count < 13:
        return False
    if count > _LONGEST_SCANNED_RUN:
        return True
    # Prefix sums mod 10, one with the digits at odd indexes doubled, one with even ones.
    # A window [start, end) sums to 0 mod 10 when both ends' prefix sums are equal; the
    # digits doubled in it are those of the other parity than its last digit (end - 1).
    odd, even = [0], [0]
    for index, char in enumerate(digits):
        value = unicodedata.digit(char)
        if index % 2:
            odd.append((odd[-1] + _DOUBLED[value]) % 10)
            even.append((even[-1] + value) % 10)
        else:
            odd.append((odd[-1] + value) % 10)
            even.append((even[-1] + _DOUBLED[value]) % 10)
    for end in range(13, count + 1):
        sums = odd if end % 2 else even
        if sums[end] in sums[max(0, end - 19) : end - 12]:
            return True
    return False


def digits_hold_card(digits: Sequence[str]) -> bool:
    """Say if any 13-19 consecutive `digits` (a run read without its separators) pass Luhn."""
    return _holds_card(digits)


def _holds_card_read(*readings: Sequence[str]) -> bool:
    """Say if any reading of one run holds a card."""
    return any(_holds_card(reading) for reading in readings)


def _last_four(digits: Sequence[str]) -> str:
    return "".join(str(unicodedata.digit(char)) for char in digits[-4:])


@lru_cache(maxsize=2048)
def _escape_kind(escape: str) -> tuple[int, str, str]:
    """Decode one `\\xNN`/`\\uXXXX`/`\\UXXXXXXXX`: its kind, character, trailing raw digits."""
    payload = escape[2:]
    char = chr(int(payload, 16))
    raw_digits = payload[len(payload.rstrip("0123456789")) :]
    if char.isdigit():
        return _IS_DIGIT, char, raw_digits
    letter = char.isalnum() and char not in BLANK_LETTERS
    return (_IS_LETTER if letter else _IS_SEPARATOR), char, raw_digits


def _finish_run(run: str, digits: Sequence[str], holds_card: bool) -> str:
    if holds_card or _holds_card(digits):
        return _MASK + _last_four(digits)
    return run


def _mask_span(span: str) -> str:
    """Mask the card runs of one candidate span (digit tokens and separators, no letter).

    Without a backslash the span is one run. With escapes, the span is read decoded (an
    escape of a letter ends a run) and raw (every escape ends a raw run, and the digits at
    the end of its payload start the next one): a run is masked whole if either reading
    finds a card in it.
    """
    if "\\" not in span:
        if span.isascii():
            return _finish_run(span, span.translate(_ASCII_DIGITS_ONLY), holds_card=False)
        return _finish_run(span, _DIGIT.findall(span), holds_card=False)
    parts = _ESCAPE_SPLIT.split(span)  # text, escape, text, escape, ..., text
    kinds = [_escape_kind(escape) for escape in parts[1::2]]
    if all(kind != _IS_LETTER for kind, _, _ in kinds):
        # One decoded run; one far longer than a card is masked without reading it twice.
        escaped = [char for kind, char, _ in kinds if kind == _IS_DIGIT]
        if len(escaped) + len(_DIGIT.findall("".join(parts[0::2]))) > _LONGEST_SCANNED_RUN:
            return _MASK + _last_four(_tail_digits(parts, kinds))
    gaps = parts[0::2]  # the text around the escapes, and the digits in it
    if span.isascii():
        gap_digits: list[Sequence[str]] = [gap.translate(_ASCII_DIGITS_ONLY) for gap in gaps]
    else:
        gap_digits = [_DIGIT.findall(gap) for gap in gaps]
    if not _escaped_span_holds_card(kinds, gap_digits):
        return span
    return _MASK + _last_four(_tail_digits(parts, kinds))


# How an escape can be read: (a line break before it?, the digits it gives).
_Reading = tuple[bool, tuple[int, ...]]


def _readings(kind: int, char: str, raw_digits: str) -> tuple[_Reading, ...]:
    """Every way a reader can take one escape inside a run of digits and separators.

    Decoded: a digit, nothing (a separator) or a break (a letter). Raw: the digits ending
    its payload, after the break its letter makes (`\\u` ...). And raw without the break:
    a partial escape written just before a digit swallows it (`\\U0001d7d` + `0` is one
    escape), so the payload's digits may really be the number's.
    """
    tail = tuple(int(digit) for digit in raw_digits)
    if kind == _IS_DIGIT:
        decoded: _Reading = (False, (unicodedata.digit(char),))
    elif kind == _IS_SEPARATOR:
        decoded = (False, ())
    else:
        decoded = (True, ())
    return (decoded, (True, tail), (False, tail)) if tail else (decoded, (True, ()))


def _escaped_span_holds_card(
    kinds: list[tuple[int, str, str]], gap_digits: list[Sequence[str]]
) -> bool:
    """Say if any reading of a span with escapes holds 13-19 digits that pass Luhn.

    Each escape is read every way `_readings` lists, each independently, so a number
    hidden by mixing readings is still found. Read right to left, the windows ending at
    each digit are kept as (digits so far, Luhn sum mod 10): at most 19 x 10 states, so
    the cost stays linear in the span.
    """
    tokens: list[tuple[_Reading, ...]] = []
    for index, found in enumerate(gap_digits):
        tokens += [((False, (unicodedata.digit(d),)),) for d in found]
        if index < len(kinds):
            tokens.append(_readings(*kinds[index]))
    states: set[tuple[int, int]] = set()
    for readings in reversed(tokens):
        following: set[tuple[int, int]] = set()
        for breaks_before, digits in readings:
            current = states
            for digit in reversed(digits):
                current = {
                    (count + 1, (total + (_DOUBLED[digit] if count % 2 else digit)) % 10)
                    for count, total in current
                    if count < 19
                } | {(1, digit)}
                if any(count >= 13 and total == 0 for count, total in current):
                    return True
            if not breaks_before:
                following |= current
        states = following
    return False


def _tail_digits(parts: list[str], kinds: list[tuple[int, str, str]]) -> list[str]:
    """The last four decoded digits of a split span, read from its end."""
    found: list[str] = []
    for index in range(len(parts) - 1, -1, -1):
        if index % 2 == 0:
            found[:0] = _DIGIT.findall(parts[index])
        elif kinds[index // 2][0] == _IS_DIGIT:
            found.insert(0, kinds[index // 2][1])
        if len(found) >= 4:
            break
    return found


def _may_hold_card(text: str) -> bool:
    """Say cheaply if `text` may hold a card candidate; never no when it does."""
    if not text.isascii():
        if sum(map(str.isdigit, text)) < 13:  # an escape's payload holds a digit: counted too
            return False
        if any(map(str.isdigit, "".join(_NON_ASCII.findall(text)))):  # rare: a non-ASCII digit
            text = _DIGIT.sub("0", text)
        text = text.encode("ascii", "ignore").decode("ascii")
    table = _COMPACT_SKELETON_WITH_ESCAPES if "\\" in text else _COMPACT_SKELETON
    return _THIRTEEN_DIGITS in text.translate(table)


def _card_spans(text: str) -> list[tuple[int, int, str]]:
    """The card runs of `text`: (start, end, what replaces them), left to right."""
    if not _may_hold_card(text):
        return []
    if text.isascii() and "\\" not in text:
        matches = _SKELETON_CANDIDATE.finditer(text.translate(_SKELETON))
    else:
        matches = _CANDIDATE.finditer(text)
    spans = []
    for match in matches:
        start, end = match.span(1)
        span = text[start:end]
        masked = _mask_span(span)
        if masked != span:
            spans.append((start, end, masked))
    return spans


def _replace(text: str, spans: Iterable[tuple[int, int, str]]) -> str:
    pieces: list[str] = []
    last = 0
    for start, end, masked in spans:
        pieces.append(text[last:start])
        pieces.append(masked)
        last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)
