"""Card numbers in every percent-decoded reading of a text (`4539%252F1445...` is
`4539/1445...` decoded twice), masked where they are written; `mask_cards` and `holds_card`
read a text every way the card engine and the percent readings can.
"""

from __future__ import annotations

import re
import string
from bisect import bisect_right

from observability.masking.card_tokens import _THIRTEEN_DIGITS
from observability.masking.cards import _MASK, _card_spans, _replace


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

#: The work of decoding percent-escapes again and again (the characters of every reading
#: decoded), at most this many times the text's length. A text encoded over and over
#: (`%2F`, `%252F`, `%25252F` ...) is decoded until nothing changes when that fits (8
#: times over, for a URL's few escapes); past it, what may still hold a card is masked.
PERCENT_WORK = 8
# What ends a run a decoded reading could turn into digits: a letter no escape makes
# vanish (as in _COMPACT_PERCENT_SKELETON below).
_PERCENT_REGION = re.compile(r"[^G-Zg-z]+")
_PERCENT_LEAD = re.compile(r"[^0-9%]*")
_PERCENT_TAIL = re.compile(r"[^0-9A-Fa-f]*")  # read on the reversed region
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


def _span_end(pattern: re.Pattern[str], text: str) -> int:
    match = pattern.match(text)  # the patterns match the empty string: never None
    return match.end() if match is not None else 0


def _percent_card_spans(text: str) -> list[tuple[int, int, str]]:
    """The cards of the decoded readings of `text`, as spans of `text`.

    Decoded again while a reading may still hold a card, within PERCENT_WORK; when the
    work runs out first, every run of the last reading that may still decode to 13 digits
    is masked whole (no digit kept): bounded work, and no depth hides a card.
    """
    layers: list[tuple[list[_Segment], list[int]]] = []
    found: list[tuple[int, int, str]] = []
    reading = text
    budget = PERCENT_WORK * len(text)

    def source(start: int, end: int) -> tuple[int, int]:
        for segments_of, starts in reversed(layers):
            start, end = _source_span(segments_of, starts, start, end)
        return start, end

    while True:
        if len(reading) > budget:
            for region in _PERCENT_REGION.finditer(reading):
                part = region.group()
                if "%" in part and part.count("%") + sum(map(str.isdigit, part)) >= 13:
                    # From its first digit or escape to its last character an escape ends in.
                    start = region.start() + _span_end(_PERCENT_LEAD, part)
                    end = region.end() - _span_end(_PERCENT_TAIL, part[::-1])
                    if start < end:
                        found.append((*source(start, end), _MASK))
            break
        budget -= len(reading)
        decoded, segments = _percent_decode(reading)
        if not segments:
            break
        layers.append((segments, [segment[0] for segment in segments]))
        found.extend((*source(start, end), masked) for start, end, masked in _card_spans(decoded))
        reading = decoded
        if "%" not in reading or not _may_hold_percent_card(reading):
            break
    return found
