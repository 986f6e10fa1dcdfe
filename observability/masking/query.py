"""A query string's parts: card numbers written across its `?`, `=` and `&`, masked where
they stand, and masked parts encoded again for readable lines (`Redactor.url`)."""

from __future__ import annotations

from bisect import bisect_right
from urllib.parse import quote_plus

from observability.masking.percent import _all_card_spans

# Re-encoding a query string: characters kept as they are, for readable lines.
_QUERY_SAFE = "*[]/:@!$'(),;"


def encode(text: str, safe: str = "") -> str:
    return quote_plus(text, safe=_QUERY_SAFE + safe)


def mask_straddling_cards(parts: list[str], separators: list[str]) -> None:
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
