"""Identifiers the server makes (request, trace and span IDs), all from the OS CSPRNG.

A request ID a client can predict lets it send its own requests under the ID the next
visitor will get, and tell a forged story in that visitor's trace. So every ID comes from
`os.urandom`, never from a seeded generator. One `os.urandom` call fills a batch of IDs
(one system call per request costs more than the rest of the ID); `deque.popleft` hands
each batch entry to exactly one thread, and a forked child throws its parent's batch away
so that two processes never hand out the same ID.

No ID looks like a card number: about 0.8% of random 32-hex trace IDs hold 13-19 decimal
digits in a row that pass Luhn, and a card scanner (a PCI DLP tool) reading the logs would
flag them. Such a draw (an ID, or the `traceparent` the trace and span make together) is
thrown away and the next one taken: the IDs stay uniformly random among those that do not
look like a card, and the check (two C calls, most of the time) runs once a request.

Whether an incoming ID was seen before is observability.http.seen_ids' question (a cache every
worker shares), not this module's.
"""

from __future__ import annotations

import collections
import os

from observability.masking.cards import digits_hold_card

_ID_BYTES = 40  # 16 request ID + 16 trace ID + 8 span ID
_BATCH = 64  # requests served per os.urandom call
_VARIANT = "89ab"

_pool: collections.deque[bytes] = collections.deque()
os.register_at_fork(after_in_child=_pool.clear)


def _take() -> bytes:
    while True:
        try:
            return _pool.popleft()
        except IndexError:
            block = os.urandom(_ID_BYTES * _BATCH)
            _pool.extend(block[i : i + _ID_BYTES] for i in range(0, len(block), _ID_BYTES))


#: The RFC 9562 variant digit (10xx) from a random hex digit's low two bits.
_VARIANT_OF = {digit: _VARIANT[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_ids() -> tuple[str, str, str]:
    """A new (request ID, trace ID, span ID): a dashed UUID4, 32 hex and 16 hex digits."""
    while True:
        h = _take().hex()  # one call for the three (this runs on every request)
        request_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT_OF[h[16]]}{h[17:20]}-{h[20:32]}"
        trace_id, span_id = h[32:64], h[64:80]
        if not _looks_like_card(request_id, trace_id, span_id):
            return request_id, trace_id, span_id


def _looks_like_card(request_id: str, trace_id: str, span_id: str) -> bool:
    # The request ID's groups are read across their dashes, the trace and span IDs as the
    # `traceparent` (either flags) that joins them: `00-<trace>-<span>-01`. A letter (x)
    # between the pieces keeps a reading from running from one into the next.
    return _card_in(f"{request_id}x00-{trace_id}-{span_id}-01x{span_id}-00")


# A text of hex digits, dashes and x only holds a card when 13 decimal digits follow each
# other with nothing but dashes between them (a letter ends a run), and some 13 to 19 of
# them in a row pass Luhn. Thirteen readings in fourteen have no run that long, which two
# C calls tell; the others have their runs checked by the masker's Luhn test
# (test_card_ids holds this reading to holds_card's).
_SKELETON = bytes.maketrans(b"0123456789abcdefx", b"dddddddddd       ")
_LETTERS_TO_SPACES = bytes.maketrans(b"abcdefx", b"       ")
_RUN = b"d" * 13


def _card_in(text: str) -> bool:
    """holds_card(text), for a text of hex digits, dashes and x."""
    raw = text.encode("ascii")
    if raw.translate(_SKELETON, b"-").find(_RUN) < 0:  # find: `in` on bytes costs twice
        return False
    runs = raw.translate(_LETTERS_TO_SPACES, b"-").split()
    return any(len(run) >= 13 and digits_hold_card(run.decode()) for run in runs)


def new_request_id() -> str:
    """A new dashed UUID4 request ID."""
    return new_ids()[0]


def new_span_id(trace_id: str = "") -> str:
    """A new 16-hex span ID (for a child span of an outgoing call).

    Given the trace it belongs to, the `traceparent` they make together holds no card
    number either (the trace ID's own digits cannot be changed: only the span's are).
    """
    while True:
        span_id = _take()[32:40].hex()
        if trace_id:
            if not _card_in(f"00-{trace_id}-{span_id}-01x{span_id}-00"):
                return span_id
            if _card_in(f"00-{trace_id}-") and not _card_in(f"x{span_id}-01x{span_id}-00"):
                return span_id  # the trace alone holds one: no span can help
        elif not _card_in(f"{span_id}-01x{span_id}-00"):
            return span_id
