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

import re
import string
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

_MASK = "****"
_LONGEST_SCANNED_RUN = 64  # digits; a longer run is masked whole without checking windows

# ---------------------------------------------------------------------------- tokens

# Digits that are not decimal (so not in \d) but have a digit value: superscripts,
# subscripts, circled digits. str.isdigit() and not str.isdecimal() in Unicode 14
# (Python 3.11); test_other_digits_are_exactly_the_non_decimal_digits keeps it in step.
_OTHER_DIGITS = (
    "\u00b2\u00b3\u00b9\u1369-\u1371\u19da\u2070\u2074-\u2079\u2080-\u2089\u2460-\u2468"
    "\u2474-\u247c\u2488-\u2490\u24ea\u24f5-\u24fd\u24ff\u2776-\u277e\u2780-\u2788"
    "\u278a-\u2792\U00010a40-\U00010a43\U00010e60-\U00010e68\U00011052-\U0001105a"
    "\U0001f100-\U0001f10a"
)
_DIGITS = rf"\d{_OTHER_DIGITS}"
# Letters that render as nothing (Unicode's Default_Ignorable_Code_Point letters: the Hangul
# fillers). A reader sees a gap, not a letter, so they separate digits like a space does;
# test_blank_letters_are_exactly_the_default_ignorable_letters keeps the list complete.
BLANK_LETTERS = "\u115f\u1160\u3164\uffa0"
_HEX = "[0-9A-Fa-f]"
# What follows the backslash of \xNN, \uXXXX, \UXXXXXXXX (a code point <= U+10FFFF).
_ESCAPE_TAIL = rf"x{_HEX}{{2}}|u{_HEX}{{4}}|U(?:000{_HEX}|0010){_HEX}{{4}}"
_ESCAPE_SOURCE = rf"\\(?:{_ESCAPE_TAIL})"
# A token that may be a digit: a digit, or an escape (decoded later: digit, separator or letter).
_DIGIT_TOKEN = rf"(?:[{_DIGITS}]|{_ESCAPE_SOURCE})"
# A separator token: not a letter or digit, `_`, an escaped \n \t \r, a backslash of no escape.
_SEPARATOR_TOKEN = rf"(?:[^\w\\]|[_{BLANK_LETTERS}]|\\[ntr]|\\(?!{_ESCAPE_TAIL}))"
_SEPARATORS = (  # plain runs in one step
    rf"(?:[^\w\\]++|[_{BLANK_LETTERS}]|\\[ntr]|\\(?!{_ESCAPE_TAIL}))*+"
)

# At least 13 digit tokens with separators between (group 1): the only places a card can
# be. Attempts start only after a letter (or at the start): one per run, not one per digit.
_CANDIDATE = re.compile(
    rf"(?<![\W\d_{_OTHER_DIGITS}{BLANK_LETTERS}]){_SEPARATORS}"
    rf"({_DIGIT_TOKEN}(?:{_SEPARATORS}{_DIGIT_TOKEN}){{12,}}+)"
)
# ASCII text without a backslash (most log text) is scanned as a skeleton of the same
# length, digit -> d, letter -> space, anything else -> '.', with plain-character
# patterns: translating is C-speed and the patterns ~20x faster than the token one.
_SKELETON = str.maketrans(
    dict.fromkeys(map(chr, range(128)), ".")
    | dict.fromkeys("0123456789", "d")
    | dict.fromkeys(string.ascii_letters, " ")
)
_SKELETON_CANDIDATE = re.compile(r"(?<![d.])\.*+(d(?:\.*+d){12,}+)")
# The first question, for any text: are there 13 digits with no letter between them at
# all? Asked of a compact skeleton (separators dropped) where 13 d's in a row are the
# answer. It may say yes wrongly, never no wrongly: non-ASCII digits become 0 first and
# other non-ASCII characters are dropped (read as separators); in text with a backslash,
# the letters of an escape (x u U n t r a-f) are dropped too, so an escape counts as the
# digits of its payload (each digit's escape has one: test_every_digit_escape_has_a_digit).
_COMPACT_SKELETON = str.maketrans(
    dict.fromkeys(map(chr, range(128)))
    | dict.fromkeys("0123456789", "d")
    | dict.fromkeys(string.ascii_letters, " ")
)
_COMPACT_SKELETON_WITH_ESCAPES = str.maketrans(
    dict.fromkeys(map(chr, range(128)))
    | dict.fromkeys("0123456789", "d")
    | dict.fromkeys(set(string.ascii_letters) - set("abcdefABCDEFxuUntr"), " ")
)
_THIRTEEN_DIGITS = "d" * 13
_ASCII_DIGITS_ONLY = str.maketrans(dict.fromkeys(set(map(chr, range(128))) - set(string.digits)))
_ESCAPE = re.compile(_ESCAPE_SOURCE)
_ESCAPE_SPLIT = re.compile(f"({_ESCAPE_SOURCE})")
_DIGIT = re.compile(f"[{_DIGITS}]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
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


# ---------------------------------------------------------------------------- cards

_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_IS_DIGIT, _IS_LETTER, _IS_SEPARATOR = 0, 1, 2


def _matched(pattern: re.Pattern[str], text: str, pos: int = 0, endpos: int = -1) -> re.Match[str]:
    """The match of a pattern that also matches the empty string: it always matches."""
    match = pattern.match(text, pos) if endpos < 0 else pattern.match(text, pos, endpos)
    if match is None:  # pragma: no cover - every caller's pattern matches the empty string
        msg = f"{pattern.pattern!r} did not match at {pos}"
        raise AssertionError(msg)
    return match


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
