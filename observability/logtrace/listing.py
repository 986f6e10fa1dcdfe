"""The requests that match some filters, newest first, read from the end of the requests file.

`search()` reads the requests file and its backups backwards from the newest line and stops
as soon as the page is certain, so the last 50 requests come back in milliseconds however
large the logs are; `list_requests()` is the same scan for `logtrace` (the newest matches,
oldest first). A request is put together from its end: the terminal line (and the slow
warning after it) carries its whole context; a started line with no end is a request still
in flight.

Most lines are never parsed. A line is parsed only when its bytes can matter: it holds every
value the filters name (as a text line writes `key=value`, or as JSON and ECS lines write
the value), and a message the filters leave room for. Both are tests a line must pass,
never reasons to skip one, so text a client controls (a path that reads "API Request
failed") can only make a line be parsed, never hide a request. Once the page is full, a
line written before the page's oldest request started is passed over after reading its time.

A `Budget` bounds the work of one search whatever the filters and the page: the lines read
and the lines parsed. When it runs out first, the page is `partial`: it holds the requests
known whole (those that started after `resume`, a few seconds after the oldest line read),
and the search goes on from there with `before=resume`: only requests started at or before
it, read from where the files reach that time (found by bisection, `files.seek_after`, a
margin later), so none of the lines already read is read again. Continuing never shows a
request twice nor skips one (a request that started before the point and ran more than
SEEK_MARGIN past it is listed from its started line, without its end).
"""

from __future__ import annotations

import heapq
import itertools
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from observability.lines import messages
from observability.lines.textline import render_field
from observability.logtrace.files import newest_first
from observability.logtrace.query import EMPTY, Filters
from observability.logtrace.records import (
    REQUESTS,
    Record,
    line_time,
    parse_line,
    quick_time,
    raw_line_time,
)
from observability.logtrace.requests import Summary, is_terminal

# Several processes append to one file in batches, so lines can be a little out of time
# order: the scan reads this much further back than strictly needed.
SLACK = timedelta(seconds=5)
# Going on from `before`, the scan starts this much later: the ends of requests that started
# before it (one longer than this that started right before `before` is listed by its start).
SEEK_MARGIN = SLACK + timedelta(seconds=5)
# A value that text, JSON and ECS lines all write as it is can be looked for as bytes.
_PLAIN = re.compile(r"[A-Za-z0-9@.+_:/<>-]+")
_SLOW = messages.SLOW.encode()
_TERMINAL = tuple(message.encode() for message in messages.TERMINAL)
_FAILED = messages.FAILED.encode()
_Key = tuple[str, str]  # a request: its request ID and span ID ("-" on lines without one)


@dataclass(frozen=True)
class Budget:
    """The most work one search does: lines read (a microsecond or so each) and lines parsed
    (their time or the whole line: tens of microseconds each)."""

    lines: int = 100_000
    parsed: int = 5_000


@dataclass
class Page:
    requests: list[Summary]  # newest first
    has_more: bool
    partial: bool = False  # the budget ran out before the page was certain
    resume: datetime | None = None  # partial: go on with search(before=resume); None: cannot
    lines_read: int = 0
    lines_parsed: int = 0


def search(
    directory: Path,
    filters: Filters,
    *,
    offset: int = 0,
    limit: int = 50,
    budget: Budget | None = None,
    before: datetime | None = None,
) -> Page:
    """The requests matching `filters`, newest first, `limit` of them from `offset` on.

    `budget`: stop there and return a partial page (None: read as far as the page needs).
    `before`: go on from a partial page's `resume` (requests that started at or before it).
    """
    if before is not None:
        until = before if filters.until is None else min(filters.until, before)
        filters = replace(filters, until=until)
    scan = _Scan(filters, need=offset + limit + 1)
    after = None if before is None else before + SEEK_MARGIN
    lines = newest_first(directory, REQUESTS, after=after, line_time=raw_line_time)
    if budget is not None:
        lines = itertools.islice(lines, budget.lines)
    read = parsed = 0
    raw = b""
    stopped = False  # by the scan itself: nothing further back can matter
    for tag, raw in lines:
        read += 1
        if budget is not None and parsed >= budget.parsed:
            break
        if not scan.wanted(raw):
            continue
        if scan.full and not scan.pending_in(raw):
            when = quick_time(raw)  # a line of ours: its first bytes tell its time
            if when is None:
                parsed += 1
                when = line_time(raw.decode("utf-8", errors="replace"))
            if when is None:
                continue
            scan.seen(when)
            if when < scan.oldest:  # no request it belongs to started late enough for the page
                if scan.done(when):
                    stopped = True
                    break
                continue
        parsed += 1
        record = parse_line(raw.decode("utf-8", errors="replace"), tag)
        if record is None or record.request_id in ("", EMPTY):
            continue
        scan.seen(record.time)
        if not scan.feed(record):
            stopped = True
            break
    found = scan.result()
    exhausted = budget is not None and (read >= budget.lines or parsed >= budget.parsed)
    if stopped or not exhausted:
        return Page(
            found[offset : offset + limit], len(found) > offset + limit, False, None, read, parsed
        )
    page = Page([], False, True, None, read, parsed)
    return _partial(page, scan, found, raw, offset, limit, before)


def _partial(
    page: Page,
    scan: _Scan,
    found: list[Summary],
    oldest_read: bytes,
    offset: int,
    limit: int,
    before: datetime | None,
) -> Page:
    """The page of a scan the budget stopped: the requests known whole, and where to go on.

    Every line before the last one read was written at most SLACK after it, so a request
    that started more than SLACK after that line has every line read: it is shown. Those
    that started earlier are left to the search that goes on with `before=resume`.
    """
    when = raw_line_time(oldest_read) or scan.last_time
    if when is None:  # nothing read could be dated: nothing is known whole
        return page
    resume = when + SLACK
    resume = resume.replace(microsecond=resume.microsecond // 1000 * 1000)  # as `until` reads
    until = scan.filters.until
    if until is not None and resume >= until:
        if before is not None:
            # the budget ran out before the lines up to `before` were reached: going on
            # from the same place would read the same lines (the filters must narrow)
            return page
        resume = until  # the lines after `until` were read: go on from it, by seeking
    known = [summary for summary in found if summary.first > resume]
    page.requests = known[offset : offset + limit]
    page.has_more = len(known) > offset + limit
    page.resume = resume
    return page


def list_requests(directory: Path, filters: Filters, limit: int) -> list[Summary]:
    """The newest `limit` requests matching `filters`, oldest first (as `logtrace` prints them)."""
    return search(directory, filters, limit=limit).requests[::-1]


class _Needles:
    """Field values a line must hold: ` key=value` in a text line, as textline renders it,
    followed by a space or the line's end; and the value itself in any line when every layout
    writes it as it is (the cheaper test, first)."""

    def __init__(self, fields: list[tuple[tuple[str, ...], str | None]]) -> None:
        self.text: list[list[tuple[bytes, bytes]]] = []  # one field of each list: spaced, bare
        self.plain: list[bytes] = []
        for keys, value in fields:
            if value is None:
                continue
            rendered = [render_field(key, value).encode() for key in keys]
            self.text.append([(field + b" ", field) for field in rendered])
            if _PLAIN.fullmatch(value):
                self.plain.append(value.encode())

    def held_by(self, raw: bytes) -> bool:
        for value in self.plain:
            if value not in raw:
                return False
        if raw[:1] != b"{":
            for alternatives in self.text:
                for spaced, bare in alternatives:
                    if spaced in raw or raw.endswith(bare):
                        break
                else:
                    return False
        return True

    def __bool__(self) -> bool:
        return bool(self.text)


class _Scan:
    """One newest-first pass: feed it lines from the end, it keeps the newest matches."""

    def __init__(self, filters: Filters, need: int) -> None:
        self.filters = filters
        self.need = need
        # Values every line of a matching request holds (its context) ...
        self.everywhere = _Needles(
            [
                (("user_id", "username"), filters.user),
                (("ip",), filters.ip),
                (("trace_id",), filters.trace),
            ]
        )
        # A path prefix is looked for as bytes, in every layout, when they all write it as it is.
        path = filters.path
        self.prefix = path.encode() if path and _PLAIN.fullmatch(path) else None
        # ... and those only its terminal line holds.
        code = filters.status if filters.status and filters.status.isdigit() else None
        self.terminal_only = _Needles([(("route",), filters.route), (("status",), code)])
        # The messages worth parsing, when the filters leave only some (None: any). A request
        # in flight has no status and no slow warning, and a 5xx always ends "failed"; the
        # slow warning itself is always read, then the terminal line before it (`pending`).
        self.messages: tuple[bytes, ...] | None = None
        if filters.slow:
            self.messages = ()
        elif filters.errors or (filters.status or "").startswith("5"):
            self.messages = (_FAILED,)
        elif filters.status is not None:
            self.messages = _TERMINAL
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
        if self.everywhere and not self.everywhere.held_by(raw):
            return False
        if self.prefix is not None and self.prefix not in raw:
            return False
        if _SLOW in raw or self.pending_in(raw):
            return True
        if self.messages is not None:
            for message in self.messages:
                if message in raw:
                    break
            else:
                return False
        return not self.terminal_only or self.terminal_only.held_by(raw)

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
            self.pending_bytes[key] = rid.encode() if _PLAIN.fullmatch(rid) else b""
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
