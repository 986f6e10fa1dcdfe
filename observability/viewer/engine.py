"""The trace viewer's one door to the log engine (`observability.logtrace`).

Every call into the engine is in this module, so that when the engine moves it is re-pointed
here and nowhere else. It adds what the viewer needs and the engine does not have yet:

- `search`: newest-first, paginated listing that reads the requests file *backwards* from
  its end and stops as soon as the page is certain, so the last 50 requests come back in
  milliseconds however large the logs are (the engine's `list_requests` parses every
  lifecycle line from the oldest backup on);
- filters by trace ID, route and status class, over the fields of the lines;
- `story`: one request ID's records split into the requests that shared the ID (by
  `span_id` when the lines carry one, else by each request's time span).
"""

from __future__ import annotations

import gzip
import heapq
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from observability.escaping import unescape_traceback
from observability.logtrace import (
    LEVELS,
    Filters,
    Record,
    Summary,
    parse_line,
    parse_when,
    trace,
)

__all__ = [
    "LEVELS",
    "Query",
    "RecordView",
    "RequestRow",
    "SearchPage",
    "Story",
    "parse_when",
    "search",
    "story",
]

REQUESTS_FILE = "billing_api_requests.log"
REQUESTS_TAG = "requests"  # how the engine tags the records of that file (and its backups)
_BACKUP = re.compile(rf"^{re.escape(REQUESTS_FILE)}\.(\d+)(\.gz)?$")
BLOCK = 256 * 1024
# Several processes append to one file in batches, so lines can be a little out of time
# order; the backwards scan reads this much further back than strictly needed.
SLACK = timedelta(seconds=5)
PENDING_LIMIT = 1000
# A value that is written as-is in text and JSON lines alike can be searched for as bytes.
_PLAIN = re.compile(r"[A-Za-z0-9@.+_:/<>-]+")
_STATUS = re.compile(r"[1-5](?:xx|\d\d)")
EMPTY = "-"

STARTED = "API Request started"
TERMINAL = ("API Request completed", "API Request failed")
SLOW = "Slow API request"
_SLOW_BYTES = SLOW.encode()
_TERMINAL_BYTES = tuple(t.encode() for t in TERMINAL)
_CONTEXT_START = b" | request_id="


@dataclass(frozen=True)
class Query:
    """The listing's filters, named like `logtrace`'s options."""

    user: str | None = None
    ip: str | None = None
    path: str | None = None
    route: str | None = None
    trace: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None  # a class such as "5xx", or one code such as "404"
    slow: bool = False
    errors: bool = False

    def __post_init__(self) -> None:
        if self.status is not None and not _STATUS.fullmatch(self.status):
            msg = f"status must be a class such as 5xx or a code such as 404, got {self.status!r}"
            raise ValueError(msg)

    def engine_filters(self) -> Filters:
        return Filters(
            user=self.user,
            ip=self.ip,
            path=self.path,
            since=self.since,
            until=self.until,
            slow=self.slow,
            errors=self.errors,
        )

    def needles(self) -> list[bytes]:
        """Byte strings every matching terminal line must contain (a cheap first pass)."""
        values = (self.user, self.ip, self.path, self.route, self.trace)
        return [v.encode() for v in values if v and _PLAIN.fullmatch(v)]


@dataclass
class RequestRow:
    """One request as the viewer shows it (in a list row or a story's header)."""

    request_id: str
    started: datetime
    ended: datetime | None
    method: str
    path: str
    status: str
    duration: float | None
    user_id: str
    username: str
    ip: str
    trace_id: str = EMPTY
    span_id: str = EMPTY
    route: str = EMPTY
    user_agent: str = EMPTY
    slow: bool = False
    failed: bool = False

    @property
    def status_class(self) -> str:
        return f"{self.status[0]}xx" if self.status[:1].isdigit() else "none"

    @property
    def started_ms(self) -> int:
        """The start as epoch milliseconds: how a link names one of several shared-ID requests."""
        return int(self.started.timestamp() * 1000)

    @property
    def user_key(self) -> str:
        """What `?user=` should say to find this user's other requests."""
        return self.username if self.username != EMPTY else self.user_id


@dataclass
class SearchPage:
    rows: list[RequestRow]
    has_more: bool


@dataclass
class RecordView:
    index: int
    time: datetime
    offset_ms: float
    level: str
    logger: str
    message: str
    file: str
    lane: str
    fields: list[tuple[str, str]]
    traceback: str

    @property
    def level_class(self) -> str:
        """The level as a CSS class name; a level we do not know is `other`."""
        return self.level.lower() if self.level in LEVELS else "other"


@dataclass
class Story:
    """One request's records, and the other requests that used the same ID."""

    row: RequestRow
    records: list[RecordView]
    occurrences: list[RequestRow]
    chosen: int  # index into occurrences
    values: dict[str, list[str]] = field(default_factory=dict)  # field name -> distinct values

    @property
    def shared_by(self) -> int:
        return len(self.occurrences)


# --- Listing -------------------------------------------------------------------


def search(directory: Path, query: Query, *, offset: int = 0, limit: int = 50) -> SearchPage:
    """The requests matching `query`, newest first, `limit` of them from `offset` on.

    Reads the requests file and its backups from the newest line backwards and stops once no
    line further back can start a request newer than the page's oldest.
    """
    scan = _BackwardsScan(query, need=offset + limit + 1)
    for tag, line in _requests_lines_backwards(directory):
        if not scan.feed(line, tag):
            break
    rows = scan.result()
    return SearchPage(rows[offset : offset + limit], has_more=len(rows) > offset + limit)


class _Occurrence:
    """One request being put together from the end: terminal (and slow) line first."""

    __slots__ = ("extra", "summary")

    def __init__(self, record: Record) -> None:
        self.summary = Summary(record.request_id, record.time, record.time)
        self.extra: dict[str, str] = {}

    def add(self, record: Record) -> None:
        self.summary.add(record)
        for key in ("trace_id", "span_id", "route", "user_agent"):
            value = record.fields.get(key)
            if value not in (None, "", EMPTY) and key not in self.extra:
                self.extra[key] = str(value)


class _BackwardsScan:
    def __init__(self, query: Query, need: int) -> None:
        self.query = query
        self.filters = query.engine_filters()
        self.need = need
        self.needles = query.needles()
        # Lines that cannot make a request match, told apart without parsing. A request still
        # in flight has no status and no slow warning; and a 5xx always ends "failed".
        skip: list[bytes] = []
        if query.errors or query.slow or query.status is not None:
            skip.append(STARTED.encode())
        if query.errors:
            skip.append(TERMINAL[0].encode())
        self.skip = tuple(skip)
        self.pending: dict[str, _Occurrence] = {}  # slow line seen, terminal not yet
        # Ended requests whose started line is still ahead (further back): rid -> how far
        # back it can be. Only to tell such a started line from one of a request in flight.
        self.awaiting: dict[str, datetime] = {}
        self.deadlines: list[tuple[float, str]] = []
        self.best: list[tuple[datetime, int, RequestRow]] = []  # min-heap of the newest
        self.counter = itertools.count()

    def feed(self, raw: bytes, tag: str) -> bool:
        """Take one line (newest first); False once nothing further back can matter."""
        if self.needles and not all(n in raw for n in self.needles) and _SLOW_BYTES not in raw:
            # Skipped: lines of other requests, and started lines (no user yet: they only
            # end a wait). A slow warning is always read: it may follow a matching request.
            return True
        if self.skip and _text_message_starts(raw, self.skip):
            return True
        if self.query.slow and _text_message_starts(raw, _TERMINAL_BYTES):
            rid = _text_request_id(raw)
            if rid is not None and rid not in self.pending:
                return True  # no slow warning followed it
        record = parse_line(raw.decode("utf-8", errors="replace"), tag)
        if record is None:
            return True
        rid = record.request_id
        if rid in ("", EMPTY):
            return True
        now = record.time
        self._expire(now)
        message = record.message
        if message.startswith(SLOW):
            occurrence = self.pending.get(rid) or _Occurrence(record)
            occurrence.add(record)
            self.pending[rid] = occurrence
        elif message.startswith(TERMINAL):
            occurrence = self.pending.pop(rid) if rid in self.pending else _Occurrence(record)
            occurrence.add(record)
            self._finish(occurrence)
            start = occurrence.summary.first - SLACK
            self.awaiting[rid] = start
            heapq.heappush(self.deadlines, (-start.timestamp(), rid))
        elif message.startswith(STARTED) and self.awaiting.pop(rid, None) is None:
            occurrence = _Occurrence(record)  # no end after it: still in flight
            occurrence.add(record)
            self._finish(occurrence)
        return not self._done(now)

    def _expire(self, now: datetime) -> None:
        while self.deadlines and -self.deadlines[0][0] > now.timestamp():
            _, rid = heapq.heappop(self.deadlines)
            start = self.awaiting.get(rid)
            if start is not None and start > now:
                del self.awaiting[rid]
        if len(self.pending) > PENDING_LIMIT:  # slow warnings whose terminal line was skipped
            for rid, occurrence in list(self.pending.items()):
                if occurrence.summary.last - SLACK > now:
                    del self.pending[rid]
                    self._finish(occurrence)

    def _finish(self, occurrence: _Occurrence) -> None:
        summary = occurrence.summary
        if not summary.matches(self.filters) or not self._extra_matches(occurrence):
            return
        row = _row(summary, occurrence.extra)
        entry = (row.started, next(self.counter), row)
        if len(self.best) < self.need:
            heapq.heappush(self.best, entry)
        elif entry[0] > self.best[0][0]:
            heapq.heapreplace(self.best, entry)

    def _extra_matches(self, occurrence: _Occurrence) -> bool:
        query = self.query
        extra = occurrence.extra
        if query.trace is not None and extra.get("trace_id") != query.trace:
            return False
        if query.route is not None and extra.get("route") != query.route:
            return False
        if query.status is not None:
            status = occurrence.summary.status
            if query.status.endswith("xx"):
                return status[:1] == query.status[0] and status[1:].isdigit()
            return status == query.status
        return True

    def _done(self, now: datetime) -> bool:
        if self.query.since is not None and now < self.query.since - SLACK:
            return True  # every line further back belongs to a request started before `since`
        return len(self.best) >= self.need and now < self.best[0][0] - SLACK

    def result(self) -> list[RequestRow]:
        for occurrence in self.pending.values():  # a slow line whose terminal line is gone
            self._finish(occurrence)
        self.pending.clear()
        return [row for _, _, row in sorted(self.best, key=lambda e: (e[0], e[1]), reverse=True)]


def _text_message_starts(raw: bytes, prefixes: tuple[bytes, ...]) -> bool:
    """Whether a text line's message starts with one of `prefixes` (JSON lines: never).

    The message follows the first "] " (the logger name holds no "]" nor space), so text
    a client controls later in the line cannot pass for it.
    """
    if not raw[:1].isdigit():
        return False
    end = raw.find(b"] ", 0, 200)
    return end != -1 and raw.startswith(prefixes, end + 2)


def _text_request_id(raw: bytes) -> str | None:
    """The request ID of a text line: the first context token (a `|` in a message is escaped)."""
    start = raw.find(_CONTEXT_START)
    if start == -1:
        return None
    start += len(_CONTEXT_START)
    end = raw.find(b" ", start)
    return raw[start : end if end != -1 else len(raw)].decode("ascii", errors="replace")


def _row(summary: Summary, extra: dict[str, str]) -> RequestRow:
    try:
        duration: float | None = float(summary.duration)
    except ValueError:
        duration = None
    return RequestRow(
        request_id=summary.request_id,
        started=summary.first,
        ended=summary.last if summary.ended else None,
        method=summary.method,
        path=summary.path,
        status=summary.status,
        duration=duration,
        user_id=summary.user_id,
        username=summary.username,
        ip=summary.ip,
        trace_id=extra.get("trace_id", EMPTY),
        span_id=extra.get("span_id", EMPTY),
        route=extra.get("route", EMPTY),
        user_agent=extra.get("user_agent", EMPTY),
        slow=summary.slow,
        failed=summary.failed or summary.status.startswith("5"),
    )


def _requests_files(directory: Path) -> list[tuple[str, Path]]:
    """(tag, path) of the requests file and its backups, newest first, as the engine tags them."""
    backups = []
    for path in directory.glob(REQUESTS_FILE + ".*"):
        match = _BACKUP.match(path.name)
        if match:
            backups.append((int(match.group(1)), path))
    found = []
    live = directory / REQUESTS_FILE
    if live.is_file():
        found.append((REQUESTS_TAG, live))
    found += [(f"{REQUESTS_TAG}.{n}", path) for n, path in sorted(backups)]
    return found


def _requests_lines_backwards(directory: Path) -> Iterator[tuple[str, bytes]]:
    """(tag, line) of the requests file, then of each backup, newest line first."""
    for tag, path in _requests_files(directory):
        for line in _lines_backwards(path):
            yield tag, line


def _lines_backwards(path: Path) -> Iterator[bytes]:
    """The complete lines of a file, last first; a gzipped backup is read whole (it is capped)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                data = handle.read()
            yield from (line for line in reversed(data.split(b"\n")) if line)
            return
        with open(path, "rb") as handle:
            position = handle.seek(0, 2)
            tail = b""
            first = True
            while position > 0:
                step = min(BLOCK, position)
                position -= step
                handle.seek(position)
                pieces = (handle.read(step) + tail).split(b"\n")
                tail = pieces[0]
                if first and pieces[-1]:
                    pieces.pop()  # a line still being written: not ours to read yet
                first = False
                for line in reversed(pieces[1:]):
                    if line:
                        yield line
            if tail:
                yield tail
    except (OSError, EOFError):
        return


# --- One request -----------------------------------------------------------------


def story(directory: Path, request_id: str, *, at_ms: int | None = None) -> Story | None:
    """Every record of `request_id` from every file, for the request started nearest `at_ms`.

    When several requests used the ID, their records are kept apart and the others are
    listed as `occurrences`.
    """
    _summary, records = trace(directory, request_id, Filters())
    if not records:
        return None
    groups = _split(records)
    rows = [_group_row(request_id, group) for group in groups]
    if at_ms is None:
        chosen = len(rows) - 1
    else:
        chosen = min(range(len(rows)), key=lambda i: abs(rows[i].started_ms - at_ms))
    group = groups[chosen]
    start = rows[chosen].started
    views = [_record_view(i, record, start) for i, record in enumerate(group)]
    values: dict[str, list[str]] = {}
    for record in group:
        for key, value in record.fields.items():
            text = _text(value)
            if text != EMPTY and text not in values.setdefault(key, []):
                values[key].append(text)
    return Story(rows[chosen], views, rows, chosen, values)


def _group_row(request_id: str, group: list[Record]) -> RequestRow:
    summary = Summary(request_id, group[0].time, group[0].time)
    occurrence_extra: dict[str, str] = {}
    for record in group:
        summary.add(record)
        for key in ("trace_id", "span_id", "route", "user_agent"):
            value = record.fields.get(key)
            if value not in (None, "", EMPTY) and key not in occurrence_extra:
                occurrence_extra[key] = str(value)
    return _row(summary, occurrence_extra)


@dataclass
class _Span:
    """One request's time span, and the lifecycle records known to be its own."""

    start: datetime
    end: datetime
    span_id: str
    own: list[int]  # positions in the records list


def _split(records: list[Record]) -> list[list[Record]]:
    """The records of one ID, one list per request that used it, oldest request first.

    A started line pairs with the next terminal line; the slow warning goes with the terminal
    line before it. Every other record goes by its `span_id` when it has one, else to the
    request running at its time (the latest one started, when several were).
    """
    spans: list[_Span] = []
    open_starts: list[int] = []
    for i, record in enumerate(records):
        if not record.file.startswith(REQUESTS_TAG):
            continue  # a copy (the errors file keeps the failed line too) is not a request
        message = record.message
        if message.startswith(STARTED):
            open_starts.append(i)
        elif message.startswith(TERMINAL):
            try:
                duration = timedelta(seconds=float(record.fields.get("duration", "")))
            except (TypeError, ValueError, OverflowError):
                duration = timedelta(0)
            own = [i]
            start = record.time - duration
            if open_starts:  # its own started line, when there is one
                own.append(open_starts.pop(0))
                start = min(start, records[own[-1]].time)
            span_id = _text(record.fields.get("span_id", EMPTY))
            spans.append(_Span(start, record.time, span_id, own))
        elif message.startswith(SLOW) and spans:
            spans[-1].own.append(i)
    for i in open_starts:  # still running
        time = records[i].time
        spans.append(_Span(time, datetime.max.replace(tzinfo=time.tzinfo), EMPTY, [i]))
    if len(spans) <= 1:
        return [records]
    spans.sort(key=lambda span: span.start)
    owner = {i: n for n, span in enumerate(spans) for i in span.own}
    by_span_id = {span.span_id: n for n, span in enumerate(spans) if span.span_id != EMPTY}
    groups: list[list[Record]] = [[] for _ in spans]
    for i, record in enumerate(records):
        span_id = _text(record.fields.get("span_id", EMPTY))
        if i in owner:
            chosen = owner[i]
        elif span_id in by_span_id:
            chosen = by_span_id[span_id]
        else:
            chosen = _running_at(spans, record.time)
        groups[chosen].append(record)
    return [group for group in groups if group]


def _running_at(spans: list[_Span], when: datetime) -> int:
    """The request running at `when` (the latest started), else the nearest one in time."""
    for slack in (timedelta(0), timedelta(milliseconds=2)):  # times are to the millisecond
        inside = [n for n, s in enumerate(spans) if s.start - slack <= when <= s.end + slack]
        if inside:
            return inside[-1]
    return min(
        range(len(spans)),
        key=lambda n: min(abs(when - spans[n].start), abs(when - spans[n].end)),
    )


def _text(value: Any) -> str:
    if value is None:
        return EMPTY
    return value if isinstance(value, str) else str(value)


def _record_view(index: int, record: Record, start: datetime) -> RecordView:
    return RecordView(
        index=index,
        time=record.time,
        offset_ms=(record.time - start).total_seconds() * 1000,
        level=record.level,
        logger=record.logger,
        message=record.message,
        file=record.file,
        lane=record.file.split(".", 1)[0],
        fields=[(str(key), _text(value)) for key, value in record.fields.items()],
        traceback=unescape_traceback(record.traceback) if record.traceback else "",
    )
