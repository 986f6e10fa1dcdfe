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

import functools
import re
import string
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote_plus, unquote_plus

from django.core.exceptions import ImproperlyConfigured

from observability.conf import DEFAULT_REDACT_KEYS, obs_settings, on_reload

REDACTED = "[REDACTED]"
#: Characters of one text that are scanned; the rest is dropped (and counted in the marker).
MAX_SCAN = 1 << 20
MEMO_TEXT_LENGTH = 384  # ASCII texts up to this long are remembered masked ...
MEMO_SIZE = 4096  # ... this many at most
_MAX_DEPTH = 8
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

_B64 = "A-Za-z0-9_*\\-"  # '*': a card masked inside a JWT (****1111) must not hide the rest
# The first `eyJ` of a base64url run, then two more segments (and any after them). Only a
# run's start can begin a match, so a run without a JWT is scanned once, not once per `eyJ`.
_JWT = re.compile(
    rf"(?<![{_B64}])((?:(?!eyJ)[{_B64}])*+)eyJ[{_B64}]*+\.[{_B64}]++\.[{_B64}]*+"
    rf"(?:\.[{_B64}]*+)*+"
)
_B64_DOT_REVERSED = re.compile(rf"[{_B64}.]*+")
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic|token)(\s++)[A-Za-z0-9._~+/=*\-]{6,}+")

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

# Re-encoding a query string: characters kept as they are, for readable lines.
_QUERY_SAFE = "*[]/:@!$'(),;"

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")

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


def mask_cards(text: str) -> str:
    """Replace every card number in `text` by `****` and its last four digits.

    The text is read as it is and, when it holds percent-escapes, as a reader who decodes
    them would read it, once and again (`4539%252F1445...` is `4539/1445...` decoded
    twice): a card found in any reading is masked where it is written.
    """
    return _replace(text, _all_card_spans(text))


def holds_card(text: str) -> bool:
    """Say if any reading of `text` holds a card number (what mask_cards would mask)."""
    return bool(_all_card_spans(text))


def _all_card_spans(text: str) -> list[tuple[int, int, str]]:
    """The card runs of every reading of `text`, as spans of `text`, left to right."""
    spans = _card_spans(text)
    if "%" in text and _may_hold_percent_card(text):
        spans = _merged(spans + _percent_card_spans(text))
    return spans


def _merged(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Overlapping spans as one, masked with the last four digits of the rightmost card."""
    merged: list[tuple[int, int, str]] = []
    for start, end, masked in sorted(spans):
        if merged and start < merged[-1][1]:
            first, last, kept = merged[-1]
            merged[-1] = (first, max(last, end), masked if end >= last else kept)
        else:
            merged.append((start, end, masked))
    return merged


# ---------------------------------------------------------------------------- percent-escapes

#: How many times percent-escapes are decoded, at most (a URL encoded four times over).
PERCENT_ROUNDS = 4
# A run of escapes: one or more `%XX`, decoded together (UTF-8 spans several escapes).
_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})++")
# The cheap question for the decoded readings: 13 digits with no letter between? Every
# digit of a decoded reading comes from a digit or an escape (whose source holds a `%`),
# and no letter but the hex digits of an escape (and x u U n t r of a backslash escape)
# can vanish on decoding; so `%` counts as a digit and those letters are dropped.
_COMPACT_PERCENT_SKELETON = str.maketrans(
    dict.fromkeys(map(chr, range(128)))
    | dict.fromkeys("0123456789%", "d")
    | dict.fromkeys(set(string.ascii_letters) - set("abcdefABCDEFxuUntr"), " ")
)
# (decoded start, decoded length, source start, source length, one escape a character)
_Segment = tuple[int, int, int, int, bool]


def _may_hold_percent_card(text: str) -> bool:
    """Say cheaply if a decoded reading of `text` may hold a card; never no when it does."""
    if _PERCENT_RUN.search(text) is None:
        return False
    if not text.isascii():
        text = text.encode("ascii", "ignore").decode("ascii")  # read as separators
    return _THIRTEEN_DIGITS in text.translate(_COMPACT_PERCENT_SKELETON)


def _percent_decode(text: str) -> tuple[str, list[_Segment]]:
    """Decode every run of `%XX` once (as UTF-8, an invalid byte read as U+FFFD), and say
    where each decoded run came from."""
    pieces: list[str] = []
    segments: list[_Segment] = []
    last = length = 0
    for match in _PERCENT_RUN.finditer(text):
        start, end = match.span()
        plain = text[last:start]
        pieces.append(plain)
        length += len(plain)
        decoded = bytes.fromhex(match.group().replace("%", "")).decode("utf-8", "replace")
        pieces.append(decoded)
        segments.append((length, len(decoded), start, end - start, len(decoded) * 3 == end - start))
        length += len(decoded)
        last = end
    pieces.append(text[last:])
    return "".join(pieces), segments


def _source_span(
    segments: list[_Segment], starts: list[int], start: int, end: int
) -> tuple[int, int]:
    """Where the decoded characters [start, end) were written before that decoding."""

    def bounds(position: int) -> tuple[int, int]:
        index = bisect_right(starts, position) - 1
        if index < 0:
            return position, position + 1
        at, length, source, source_length, per_escape = segments[index]
        if position >= at + length:  # after this run, before the next: copied as it was
            offset = source + source_length + position - at - length
            return offset, offset + 1
        if per_escape:  # one escape a character
            offset = source + 3 * (position - at)
            return offset, offset + 3
        return source, source + source_length  # UTF-8: the whole run

    return bounds(start)[0], bounds(end - 1)[1]


def _percent_card_spans(text: str) -> list[tuple[int, int, str]]:
    """The cards of the decoded readings of `text`, as spans of `text`."""
    layers: list[tuple[list[_Segment], list[int]]] = []
    found: list[tuple[int, int, str]] = []
    reading = text
    for _ in range(PERCENT_ROUNDS):
        decoded, segments = _percent_decode(reading)
        if not segments:
            break
        layers.append((segments, [segment[0] for segment in segments]))
        for start, end, masked in _card_spans(decoded):
            for segments_of, starts in reversed(layers):
                start, end = _source_span(segments_of, starts, start, end)
            found.append((start, end, masked))
        reading = decoded
        if "%" not in reading or not _may_hold_percent_card(reading):
            break
    return found


# ---------------------------------------------------------------------------- cut and cap


def _cut(text: str) -> str:
    """Cut `text` to MAX_SCAN and mask whole what the cut may have split.

    The rest of a digit run that reaches the cut is never scanned, so the visible part
    of it is masked whatever it holds (`****`, no digits kept); likewise a JWT cut short.
    """
    text = text[:MAX_SCAN]
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


def _cap(text: str, limit: int | None, dropped: int = 0) -> str:
    """Keep the first `limit` characters and say how many were cut (escaping.cap's marker)."""
    if limit is not None and len(text) > limit:
        dropped += len(text) - limit
        text = text[:limit]
    return f"{text}...[{dropped} more chars]" if dropped else text


# ---------------------------------------------------------------------------- the policy


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


class Redactor:
    """The policy, compiled for one list of sensitive key names."""

    is_null = False

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
        # Masked texts by (text, limit): user agents, paths and usernames repeat from one
        # request to the next. Short ASCII texts only (a few MB at most, full); emptied
        # when full, so a flood of new texts costs one insert each and never grows it.
        self._memo: dict[tuple[str, int | None], str] = {}

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
                masked = _cap(self._mask(text), limit, 0)
                if len(self._memo) >= MEMO_SIZE:
                    self._memo.clear()
                self._memo[key] = masked
            return masked
        dropped = 0
        if len(text) > MAX_SCAN:
            dropped = len(text) - MAX_SCAN
            text = _cut(text)
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
            path = _cut(path)
        if len(query) > MAX_SCAN:
            dropped += len(query) - MAX_SCAN
            query = _cut(query)
        pairs = parse_qsl(query, keep_blank_values=True)
        parts = [part for pair in pairs for part in pair]
        separators = ["=", "&"] * len(pairs)
        if path is not None:
            parts.insert(0, path)
            separators.insert(0, "?")
        _mask_straddling_cards(parts, separators)
        if path is not None:
            path = parts.pop(0)
        if pairs:
            encoded = "&".join(
                f"{_encode(self._mask(key))}="
                + (REDACTED if self.is_sensitive_key(key) else _encode(self._mask(value)))
                for key, value in zip(parts[::2], parts[1::2], strict=True)
            )
        else:  # only `&`s, or nothing
            encoded = _encode(self._mask(unquote_plus(query)), safe="&=")
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


def _encode(text: str, safe: str = "") -> str:
    return quote_plus(text, safe=_QUERY_SAFE + safe)


def _mask_straddling_cards(parts: list[str], separators: list[str]) -> None:
    """Mask, in place, card numbers that run across the `separators` between `parts`.

    `parts` are a path and a query's keys and values, in order, each followed by its
    separator (`?`, `=`, `&`). A span crossing a boundary is masked as a whole and put
    into the first part it touches; the others lose their share. Each part is masked on
    its own afterwards.
    """
    starts: list[int] = []
    joined: list[str] = []
    position = 0
    for part, separator in zip(parts, separators, strict=True):
        starts.append(position)
        joined.append(part + separator)
        position += len(part) + len(separator)
    text = "".join(joined)
    spans = []
    for start, end, masked in _all_card_spans(text):
        first = bisect_right(starts, start) - 1
        last = bisect_right(starts, end - 1) - 1
        if first != last:
            spans.append((start, end, first, last, masked))
    for start, end, first, last, masked in reversed(spans):  # right to left: offsets hold
        for index in range(first, last + 1):
            part = parts[index]
            low = max(start - starts[index], 0)
            high = min(end - starts[index], len(part))
            parts[index] = part[:low] + (masked if index == first else "") + part[high:]


def _normalise(key: str) -> str:
    return _NON_WORD.sub("_", _CAMEL.sub("_", key).lower()).strip("_")


# --- the policy for the current settings ---------------------------------------------

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
