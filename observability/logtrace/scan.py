"""One newest-first pass over the requests file: requests put together from their ends.

A request is put together from its end: the terminal line (and the slow warning after it)
carries its whole context; a started line with no end is a request still in flight. The
scan keeps the newest matches and says when nothing further back can matter (`done`).
"""

from __future__ import annotations

import heapq
import itertools
from datetime import datetime, timedelta

from observability.lines import messages
from observability.logtrace.prefilter import PLAIN, Prefilter
from observability.logtrace.query import EMPTY, Filters
from observability.logtrace.records import Record
from observability.logtrace.summary import Summary, is_terminal

# Several processes append to one file in batches, so lines can be a little out of time
# order: the scan reads this much further back than strictly needed.
SLACK = timedelta(seconds=5)
_SLOW = messages.SLOW.encode()
_Key = tuple[str, str]  # a request: its request ID and span ID ("-" on lines without one)


class Scan:
    """One newest-first pass: feed it lines from the end, it keeps the newest matches."""

    def __init__(self, filters: Filters, need: int) -> None:
        self.filters = filters
        self.need = need
        self.prefilter = Prefilter(filters)
        # Keyed by request ID and span ID: requests that shared an ID keep their own lines.
        self.pending: dict[_Key, Summary] = {}  # slow warning read, terminal line not yet
        self.pending_bytes: dict[_Key, bytes] = {}  # how to spot their terminal lines
        # Ended requests whose started line is still ahead (further back): rid -> how far
        # back it can be. Only to tell such a started line from one of a request in flight.
        self.awaiting: dict[_Key, datetime] = {}
        self.awaiting_spans: dict[str, list[str]] = {}  # rid -> span IDs in `awaiting`
        self.deadlines: list[tuple[float, _Key]] = []
        self.best: list[tuple[datetime, int, Summary]] = []  # min-heap of the newest
        self.counter = itertools.count()
        self.last_time: datetime | None = None  # of the last line whose time was read

    def seen(self, when: datetime) -> None:
        self.last_time = when

    def wanted(self, raw: bytes) -> bool:
        """Whether a line can matter, from its bytes alone (it runs for every line read)."""
        prefilter = self.prefilter
        if not prefilter.holds_context(raw):
            return False
        if _SLOW in raw or self.pending_in(raw):
            return True
        return prefilter.holds_ending(raw)

    def pending_in(self, raw: bytes) -> bool:
        """Whether a line may be the terminal line of a slow warning already read."""
        pending = self.pending_bytes  # few: a terminal line comes right before its slow warning
        return bool(pending) and any(rid in raw for rid in pending.values())

    @property
    def full(self) -> bool:
        return len(self.best) >= self.need

    @property
    def oldest(self) -> datetime:
        """When the oldest request of a full page started."""
        return self.best[0][0]

    def feed(self, record: Record) -> bool:
        """Take one record (newest first); False once nothing further back can matter."""
        rid = record.request_id
        span = record.fields.get("span_id")
        key = (rid, EMPTY if span in (None, "") else str(span))
        now = record.time
        self._expire(now)
        message = record.message
        if message.startswith(messages.SLOW):
            summary = self.pending.get(key) or Summary(rid, now, now)
            summary.add(record)
            self.pending[key] = summary
            self.pending_bytes[key] = rid.encode() if PLAIN.fullmatch(rid) else b""
        elif is_terminal(message):
            summary = self.pending.pop(key) if key in self.pending else Summary(rid, now, now)
            self.pending_bytes.pop(key, None)
            summary.add(record)
            self._finish(summary)
            start = summary.first - SLACK
            if key not in self.awaiting:
                self.awaiting_spans.setdefault(rid, []).append(key[1])
            self.awaiting[key] = start
            heapq.heappush(self.deadlines, (-start.timestamp(), key))
        elif message.startswith(messages.STARTED) and not self._claim(key):
            summary = Summary(rid, now, now)  # no end after it: still in flight
            summary.add(record)
            self._finish(summary)
        return not self.done(now)

    def _claim(self, key: _Key) -> bool:
        """Whether a started line is that of an ended request read already: the one with its
        span ID; else, as lines without span IDs pair, one without (or any, if it has none)."""
        rid, span = key
        spans = self.awaiting_spans.get(rid)
        if not spans:
            return False
        if span in spans:
            chosen = span
        elif EMPTY in spans:
            chosen = EMPTY
        elif span == EMPTY:
            chosen = spans[-1]
        else:
            return False
        self._forget((rid, chosen))
        return True

    def _forget(self, key: _Key) -> None:
        del self.awaiting[key]
        spans = self.awaiting_spans[key[0]]
        spans.remove(key[1])
        if not spans:
            del self.awaiting_spans[key[0]]

    def _expire(self, now: datetime) -> None:
        while self.deadlines and -self.deadlines[0][0] > now.timestamp():
            _, key = heapq.heappop(self.deadlines)
            start = self.awaiting.get(key)
            if start is not None and start > now:
                self._forget(key)
        for key, summary in list(self.pending.items()):
            if summary.last - SLACK > now:  # a slow warning whose terminal line is not there
                del self.pending[key], self.pending_bytes[key]
                self._finish(summary)

    def _finish(self, summary: Summary) -> None:
        if not summary.matches(self.filters):
            return
        entry = (summary.first, next(self.counter), summary)
        if len(self.best) < self.need:
            heapq.heappush(self.best, entry)
        elif entry[0] > self.best[0][0]:
            heapq.heapreplace(self.best, entry)

    def done(self, now: datetime) -> bool:
        """Whether no line further back than one written at `now` can matter."""
        since = self.filters.since
        if since is not None and now < since - SLACK:
            return True  # every line further back belongs to a request started before `since`
        return self.full and now < self.oldest - SLACK

    def result(self) -> list[Summary]:
        """The matches, newest first."""
        for summary in self.pending.values():  # slow warnings whose terminal line is gone
            self._finish(summary)
        self.pending.clear()
        self.pending_bytes.clear()
        return [summary for _, _, summary in sorted(self.best, reverse=True)]
