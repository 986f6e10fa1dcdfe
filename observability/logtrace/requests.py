"""One request ID's story: its records from every file, and the requests that used the ID.

`trace()` gathers every record of one request ID from every file in time order;
`story()` also splits them into the requests that shared the ID (a client may reuse or
forge one), each with its `Summary`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from observability import messages
from observability.logtrace.files import lines_containing, log_files
from observability.logtrace.query import EMPTY, LEVELS, Filters
from observability.logtrace.records import REQUESTS, Record, parse_line

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Fields a request's summary takes from the first record that has them.
_FIRST_SEEN = ("method", "path", "ip", "trace_id", "span_id", "route", "user_agent")


@dataclass
class Summary:
    """One request as its records tell it: who, what, how it ended."""

    request_id: str
    first: datetime
    last: datetime
    # Who and what: from the first record that names them.
    method: str = EMPTY
    path: str = EMPTY
    route: str = EMPTY  # the URL pattern (never the raw path)
    user_id: str = EMPTY
    username: str = EMPTY
    ip: str = EMPTY
    trace_id: str = EMPTY
    span_id: str = EMPTY  # each request its own, even when they shared an ID
    user_agent: str = EMPTY
    counts: dict[str, int] = field(default_factory=dict)  # records per file
    # How it ended.
    status: str = EMPTY
    duration: str = EMPTY  # seconds, as the terminal line writes them
    slow: bool = False
    failed: bool = False  # a failed line, or a 5xx
    ended: bool = False  # its terminal line was read
    saw_start: bool = False
    max_level: int = 0  # the highest level among its records

    def add(self, record: Record) -> None:
        fields = record.fields
        self.first = min(self.first, record.time)
        self.last = max(self.last, record.time)
        self.counts[record.file] = self.counts.get(record.file, 0) + 1
        self.max_level = max(self.max_level, LEVELS.get(record.level, 0))
        for key in _FIRST_SEEN:
            if getattr(self, key) == EMPTY and _known(fields.get(key)):
                setattr(self, key, str(fields[key]))
        message = record.message
        if _known(fields.get("user_id")) and (
            record.lane == REQUESTS or (self.user_id == EMPTY and is_terminal(message))
        ):
            self.user_id = str(fields["user_id"])
            self.username = str(fields.get("username", EMPTY))
        if message.startswith(messages.STARTED):
            self.saw_start = True
            return
        if not self.saw_start and message.startswith((*messages.TERMINAL, messages.SLOW)):
            # read from the end, or no started line: it started `duration` before this line
            self.first = min(self.first, record.time - duration_of(record))
        if is_terminal(message):
            self.status = str(fields.get("status", self.status))
            self.duration = str(fields.get("duration", self.duration))
            self.failed = self.failed or message.startswith(messages.FAILED)
            self.failed = self.failed or self.status_class == "5xx"
            self.ended = True
        elif message.startswith(messages.SLOW):
            self.slow = True

    def matches(self, filters: Filters) -> bool:
        if filters.user is not None and filters.user not in (self.user_id, self.username):
            return False
        exact = ((filters.ip, self.ip), (filters.trace, self.trace_id), (filters.route, self.route))
        if any(value is not None and value != mine for value, mine in exact):
            return False
        if filters.path is not None and not self.path.startswith(filters.path):
            return False
        if (filters.slow and not self.slow) or (filters.errors and not self.failed):
            return False
        if filters.level and self.max_level < filters.level:
            return False
        return filters.status_ok(self.status) and filters.time_ok(self.first)

    @property
    def status_class(self) -> str:
        """`5xx` for a 503; `none` while the request has no status."""
        return f"{self.status[0]}xx" if self.status[:1].isdigit() else "none"

    @property
    def seconds(self) -> float | None:
        """The duration as a number of seconds, when the request has ended."""
        try:
            return float(self.duration)
        except ValueError:
            return None

    @property
    def started_ms(self) -> int:
        """The start as epoch milliseconds: how one of the requests sharing an ID is named."""
        return int(self.first.timestamp() * 1000)

    @property
    def user_key(self) -> str:
        """What `--user` (`?user=`) takes to find this user's other requests."""
        return self.username if self.username != EMPTY else self.user_id

    SHOWN = (
        *("method", "path", "route", "user_id", "username", "ip", "trace_id"),
        *("status", "duration", "slow", "failed"),
    )

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "started": self.first.isoformat(timespec="milliseconds"),
            **{name: getattr(self, name) for name in self.SHOWN},
            "records": dict(self.counts),
        }

    def line(self) -> str:
        flags = " ".join(f for f, on in (("SLOW", self.slow), ("FAILED", self.failed)) if on)
        return (
            f"{self.first:%Y-%m-%d %H:%M:%S} {self.request_id} {self.method} {self.path} "
            f"status={self.status} duration={self.duration} user={self.username}({self.user_id}) "
            f"ip={self.ip} {flags}".rstrip()
        )


def _known(value: Any) -> bool:
    return value not in (None, "", EMPTY)


def is_terminal(message: str) -> bool:
    return message.startswith(messages.TERMINAL)


def duration_of(record: Record) -> timedelta:
    """A terminal line's duration (zero when it has none that reads as seconds)."""
    with contextlib.suppress(TypeError, ValueError, OverflowError):
        return timedelta(seconds=float(record.fields.get("duration", "")))
    return timedelta(0)


def summarise(request_id: str, records: list[Record]) -> Summary:
    summary = Summary(request_id, records[0].time if records else _EPOCH, _EPOCH)
    for record in records:
        summary.add(record)
    return summary


def trace(directory: Path, request_id: str, filters: Filters) -> tuple[Summary, list[Record]]:
    """Every record of one request ID from every file, in time order."""
    records: list[Record] = []
    order = 0
    for tag, path in log_files(directory):
        for line in lines_containing(path, request_id):
            record = parse_line(line, tag)
            if record is None or record.request_id != request_id:
                continue
            if not filters.time_ok(record.time) or LEVELS.get(record.level, 0) < filters.level:
                continue
            order += 1
            record.order = order
            records.append(record)
    records.sort(key=lambda r: (r.time, _rank(r.message), r.order))
    return summarise(request_id, records), records


def _rank(message: str) -> int:
    """Within one millisecond: the started line first, the terminal and slow lines last."""
    if message.startswith(messages.STARTED):
        return 0
    if is_terminal(message):
        return 2
    if message.startswith(messages.SLOW):
        return 3
    return 1


@dataclass
class Story:
    """One request ID's records, and each request that used the ID (oldest first)."""

    request_id: str
    summary: Summary  # of every record
    records: list[Record]
    requests: list[tuple[Summary, list[Record]]]

    def nearest(self, at_ms: int | None = None) -> int:
        """The request started nearest `at_ms` (epoch milliseconds); the newest without it."""
        if at_ms is None:
            return len(self.requests) - 1
        return min(
            range(len(self.requests)), key=lambda i: abs(self.requests[i][0].started_ms - at_ms)
        )


def story(directory: Path, request_id: str, filters: Filters | None = None) -> Story | None:
    """`trace()` with the records split by request; None when no record has the ID."""
    summary, records = trace(directory, request_id, filters or Filters())
    if not records:
        return None
    groups = split_by_request(records)
    return Story(
        request_id,
        summary,
        records,
        [(summarise(request_id, group), group) for group in groups],
    )


@dataclass
class _Span:
    """One request's time span, and the records known to be its own (positions in records)."""

    start: datetime
    end: datetime
    span_id: str
    own: list[int]


def split_by_request(records: list[Record]) -> list[list[Record]]:
    """The records of one request ID, one list per request that used it, oldest request first.

    Each request ends with a terminal line in the requests file (or is still running: a
    started line with no end). A started line pairs with the terminal line of its span ID
    (without span IDs: the oldest open one); a slow warning goes with the terminal line
    before it. Every other record goes by its span ID when it has one (each request has
    its own), else to the request running at its time (the latest started, when several were).
    """
    spans: list[_Span] = []
    open_starts: list[int] = []
    for i, record in enumerate(records):
        if record.lane != REQUESTS:
            continue  # a copy (the errors file keeps the failed line too) is not a request
        message = record.message
        if message.startswith(messages.STARTED):
            open_starts.append(i)
        elif is_terminal(message):
            span_id = _span_id(record)
            span = _Span(record.time - duration_of(record), record.time, span_id, [i])
            partner = _started_line(records, open_starts, span_id)
            if partner is not None:
                open_starts.remove(partner)
                span.own.append(partner)
                span.start = min(span.start, records[partner].time)
            spans.append(span)
        elif message.startswith(messages.SLOW) and spans:
            spans[-1].own.append(i)
    for i in open_starts:  # still running
        when = records[i].time
        spans.append(_Span(when, datetime.max.replace(tzinfo=UTC), _span_id(records[i]), [i]))
    if len(spans) <= 1:
        return [records]
    spans.sort(key=lambda span: span.start)
    owner = {i: n for n, span in enumerate(spans) for i in span.own}
    by_span_id = {span.span_id: n for n, span in enumerate(spans) if span.span_id != EMPTY}
    groups: list[list[Record]] = [[] for _ in spans]
    for i, record in enumerate(records):
        span_id = _span_id(record)
        if span_id in by_span_id:
            chosen = by_span_id[span_id]
        elif i in owner:
            chosen = owner[i]
        else:
            chosen = _running_at(spans, record.time)
        groups[chosen].append(record)
    return [group for group in groups if group]


def _span_id(record: Record) -> str:
    value = record.fields.get("span_id")
    return str(value) if _known(value) else EMPTY


def _started_line(records: list[Record], open_starts: list[int], span_id: str) -> int | None:
    """The open started line of the request whose terminal line has `span_id`.

    The one with the same span ID; else the oldest without one (lines written before
    span IDs, or by another writer).
    """
    candidates = [i for i in open_starts if span_id == EMPTY or _span_id(records[i]) == span_id]
    candidates = candidates or [i for i in open_starts if _span_id(records[i]) == EMPTY]
    return candidates[0] if candidates else None


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
