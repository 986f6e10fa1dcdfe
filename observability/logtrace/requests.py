"""One request ID's story: its records from every file, and the requests that used the ID.

`trace()` gathers every record of one request ID from every file in time order;
`story()` also splits them into the requests that shared the ID (a client may reuse or
forge one), each with its `Summary`.

Only lines that hold the ID as a whole request ID value are read (`request_id_needles`),
and at most `limit` of them per file (the newest), so the story of any ID, even one a
client used for a million requests, costs a bounded number of parsed lines.

Requests are told apart by their span IDs (each request has its own, on every record):
a span whose lifecycle lines are in the requests file is one request; records of a span
that has none (a request sampled out, or whose lifecycle lines are gone) are another,
kept apart rather than merged into whichever request ran at the time. Lines without span
IDs (written before them) go by time.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from observability.lines import messages
from observability.logtrace.files import lines_holding, log_files
from observability.logtrace.hosts import places, unique
from observability.logtrace.query import EMPTY, LEVELS, Filters
from observability.logtrace.records import (
    REQUESTS,
    Record,
    parse_line,
    request_id_needles,
    typed,
)
from observability.masking.escaping import escape

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The most lines of one request ID read per file tag (the newest): the story's work bound.
STORY_LINES = 2000
#: The security event the server writes when a client sends an ID it already used.
#: The server saw the request's ID, or its traceparent, sent before (observability.http.reuse).
REUSED_EVENTS = frozenset({"request_id_reused", "traceparent_reused"})
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
    host: str = EMPTY  # the host that served it (read from a central root)

    def add(self, record: Record) -> None:
        fields = record.fields
        self.first = min(self.first, record.time)
        self.last = max(self.last, record.time)
        self.counts[record.file] = self.counts.get(record.file, 0) + 1
        self.max_level = max(self.max_level, LEVELS.get(record.level, 0))
        if self.host == EMPTY and record.host:
            self.host = record.host
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
        if filters.host is not None and self.host != filters.host:
            return False
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
        *("method", "path", "route", "user_id", "username", "ip", "trace_id", "span_id"),
        *("status", "duration", "slow", "failed", "ended"),
    )

    @property
    def lifecycle(self) -> bool:
        """Whether a lifecycle line of the request was read (not one sampled out)."""
        return self.saw_start or self.ended

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "started": self.first.isoformat(timespec="milliseconds"),
            **({"host": self.host} if self.host != EMPTY else {}),
            **{name: _shown(name, getattr(self, name)) for name in self.SHOWN},
            "records": dict(self.counts),
        }

    def line(self) -> str:
        """One line for a terminal: every value from the logs escaped (masking.escaping)."""
        flags = " ".join(f for f, on in (("SLOW", self.slow), ("FAILED", self.failed)) if on)
        e = escape
        host = f"[{e(self.host)}] " if self.host != EMPTY else ""
        return (
            f"{self.first:%Y-%m-%d %H:%M:%S} {host}{e(self.request_id)} "
            f"{e(self.method)} {e(self.path)} "
            f"status={e(self.status)} duration={e(self.duration)} "
            f"user={e(self.username)}({e(self.user_id)}) ip={e(self.ip)} {flags}".rstrip()
        )


def _shown(name: str, value: Any) -> Any:
    """A summary's value for `--json`: numbers as numbers, an unknown one null."""
    return None if value == EMPTY else typed(name, value)


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
    if summary.user_id == EMPTY and not any(r.lane == REQUESTS for r in records):
        # no lifecycle line (a request sampled out): its own records name its user
        for record in records:
            if _known(record.fields.get("user_id")):
                summary.user_id = str(record.fields["user_id"])
                summary.username = str(record.fields.get("username", EMPTY))
                break
    return summary


def _rank(message: str) -> int:
    """Within one millisecond: the started line first, the terminal and slow lines last."""
    if message.startswith(messages.STARTED):
        return 0
    if is_terminal(message):
        return 2
    if message.startswith(messages.SLOW):
        return 3
    return 1


def _read(
    directory: Path, request_id: str, filters: Filters, limit: int | None
) -> tuple[list[Record], bool]:
    """Every record of `request_id` within the filters' times, in time order, and whether
    some were left unread (more than `limit` lines of one file tag held the ID)."""
    records: list[Record] = []
    partial = False
    for host, folder in places(directory):  # one directory, or each host of a central root
        if filters.host is not None and host != filters.host:
            continue
        found, cut = _read_folder(folder, request_id, filters, limit)
        for record in found:
            record.host = host
        records += found
        partial = partial or cut
    records = unique(records)  # a record delivered twice (at-least-once shipping) once
    for order, record in enumerate(records, 1):
        record.order = order
    records.sort(key=lambda r: (r.time, _rank(r.message), r.order))
    return records, partial


def _read_folder(
    directory: Path, request_id: str, filters: Filters, limit: int | None
) -> tuple[list[Record], bool]:
    """`_read` of one log directory, its records in file order."""
    needles = request_id_needles(request_id)
    core = request_id.encode()
    by_tag: dict[str, list[tuple[str, Path]]] = {}
    for tag, path in log_files(directory):
        by_tag.setdefault(tag.partition(".")[0], []).append((tag, path))
    records: list[Record] = []
    partial = False
    for files in by_tag.values():
        kept: list[tuple[str, list[str]]] = []
        room = limit
        for tag, path in reversed(files):  # newest first, so the newest lines are kept
            if room == 0:  # full: an older file holding the ID makes the story partial
                partial = partial or next(lines_holding(path, needles, core), None) is not None
                continue
            newest: deque[str] = deque(maxlen=room)
            held = 0
            for line in lines_holding(path, needles, core):
                held += 1
                newest.append(line)
            if room is not None:
                partial = partial or held > room
                room -= len(newest)
            kept.append((tag, list(newest)))
        for tag, lines in reversed(kept):
            for line in lines:
                record = parse_line(line, tag)
                if record is None or record.request_id != request_id:
                    continue
                if filters.time_ok(record.time):
                    records.append(record)
    return records, partial


def _at_level(records: list[Record], level: int) -> list[Record]:
    return [r for r in records if LEVELS.get(r.level, 0) >= level] if level else records


def trace(
    directory: Path, request_id: str, filters: Filters, *, limit: int | None = None
) -> tuple[Summary, list[Record]]:
    """Every record of one request ID from every file, in time order (those at the filters'
    level or above; the summary is of them all, so it has the status whatever the level)."""
    records, _ = _read(directory, request_id, filters, limit)
    return summarise(request_id, records), _at_level(records, filters.level)


@dataclass
class Story:
    """One request ID's records, and each request that used the ID (oldest first)."""

    request_id: str
    summary: Summary  # of every record
    records: list[Record]  # those shown (at the filters' level or above)
    requests: list[tuple[Summary, list[Record]]]  # each request's summary, its shown records
    reused: list[Record] = field(default_factory=list)  # REUSED_EVENTS among them
    partial: bool = False  # more lines held the ID than were read (the newest were)

    @property
    def shared(self) -> bool:
        """Whether several requests used the ID, or the server saw it reused."""
        return len(self.requests) > 1 or bool(self.reused)

    def nearest(self, at_ms: int | None = None) -> int:
        """The request started nearest `at_ms` (epoch milliseconds); the newest without it."""
        if at_ms is None:
            return len(self.requests) - 1
        return min(
            range(len(self.requests)), key=lambda i: abs(self.requests[i][0].started_ms - at_ms)
        )

    def by_span(self, span_id: str) -> int | None:
        """The request with this span ID, if one used the ID."""
        for number, (summary, _) in enumerate(self.requests):
            if summary.span_id == span_id:
                return number
        return None


def story(
    directory: Path,
    request_id: str,
    filters: Filters | None = None,
    *,
    limit: int | None = STORY_LINES,
) -> Story | None:
    """`trace()` with the records split by request; None when no record has the ID (at the
    filters' level). `limit`: the most lines read per file tag (None: every one)."""
    filters = filters or Filters()
    records, partial = _read(directory, request_id, filters, limit)
    shown = _at_level(records, filters.level)
    if not shown:
        return None
    groups = split_by_request(records)
    return Story(
        request_id,
        summarise(request_id, records),
        shown,
        [(summarise(request_id, group), _at_level(group, filters.level)) for group in groups],
        [r for r in records if r.fields.get("event_type") in REUSED_EVENTS],
        partial,
    )


@dataclass
class _Span:
    """One request's time span, and the records known to be its own (positions in records)."""

    start: datetime
    end: datetime
    span_id: str
    own: list[int]


class _OpenStarts:
    """Started lines not yet paired with a terminal line, oldest first, by span ID."""

    def __init__(self) -> None:
        self.order: deque[int] = deque()
        self.by_span: dict[str, deque[int]] = {}
        self.taken: set[int] = set()

    def add(self, i: int, span_id: str) -> None:
        self.order.append(i)
        self.by_span.setdefault(span_id, deque()).append(i)

    def take(self, span_id: str) -> int | None:
        """The started line a terminal line with `span_id` ends: the oldest open one with the
        same span ID, else the oldest without one (lines written before span IDs, or by
        another writer); any oldest open one when the terminal line has none."""
        queues = (
            [self.order]
            if span_id == EMPTY
            else [self.by_span.get(span_id), self.by_span.get(EMPTY)]
        )
        for queue in queues:
            while queue:
                i = queue.popleft()
                if i not in self.taken:
                    self.taken.add(i)
                    return i
        return None

    def remaining(self) -> list[int]:
        return [i for i in self.order if i not in self.taken]


def split_by_request(records: list[Record]) -> list[list[Record]]:
    """The records of one request ID, one list per request that used it, oldest request first.

    Records of background tasks (they carry a `task_id`: the request's ID travelled with
    the task) run with spans of their own, after the request: each joins the request whose
    record says it published the task (`published_task_id`), else the latest request that
    started before it.
    """
    tasks = [record for record in records if _task_record(record)]
    if not tasks:
        return _split_requests(records)
    groups = _split_requests([r for r in records if not _task_record(r)])
    if not groups:
        return [tasks]
    starts = [group[0].time for group in groups]
    by_span = {_span_id(r): n for n, group in enumerate(groups) for r in group}
    by_span.pop(EMPTY, None)

    def by_time(record: Record) -> int:
        return max(bisect.bisect_right(starts, record.time) - 1, 0)

    publisher: dict[str, int] = {}
    joined: list[list[Record]] = [[] for _ in groups]
    for record in tasks:  # in time order: a task's published line comes before its records
        published = record.fields.get("published_task_id")
        if _known(published):
            n = by_span.get(_span_id(record), by_time(record))  # the request's own span
            publisher[str(published)] = n
        else:  # published elsewhere and not seen (another file, rotated away): by time
            n = publisher.get(str(record.fields.get("task_id")), by_time(record))
        joined[n].append(record)
    return [
        list(heapq.merge(group, extra, key=lambda r: r.time)) if extra else group
        for group, extra in zip(groups, joined, strict=True)
    ]


def _task_record(record: Record) -> bool:
    """A task's record, or the line that published one (the sweep's has a span of its own)."""
    fields = record.fields
    return _known(fields.get("task_id")) or _known(fields.get("published_task_id"))


def _split_requests(records: list[Record]) -> list[list[Record]]:
    """The records of one request ID (no task's), one list per request that used it.

    Each request ends with a terminal line in the requests file (or is still running: a
    started line with no end). A started line pairs with the terminal line of its span ID
    (without span IDs: the oldest open one); a slow warning goes with the terminal line
    before it. Every other record goes by its span ID: to the request whose lifecycle lines
    carry it, or, when none does, to a request of its own (one sampled out, whose lifecycle
    lines were never written: it is never merged into another that ran at the time). A
    record without a span ID goes to the request running at its time (the latest started,
    when several were). Linear in the records (a time lookup is a bisection).
    """
    spans: list[_Span] = []
    starts = _OpenStarts()
    for i, record in enumerate(records):
        if record.lane != REQUESTS:
            continue  # a copy (the errors file keeps the failed line too) is not a request
        message = record.message
        if message.startswith(messages.STARTED):
            starts.add(i, _span_id(record))
        elif is_terminal(message):
            span_id = _span_id(record)
            span = _Span(record.time - duration_of(record), record.time, span_id, [i])
            partner = starts.take(span_id)
            if partner is not None:
                span.own.append(partner)
                span.start = min(span.start, records[partner].time)
            spans.append(span)
        elif message.startswith(messages.SLOW) and spans:
            spans[-1].own.append(i)
    for i in starts.remaining():  # still running
        when = records[i].time
        spans.append(_Span(when, datetime.max.replace(tzinfo=UTC), _span_id(records[i]), [i]))
    lifecycle = {span.span_id for span in spans}
    others = {_span_id(r) for r in records} - lifecycle - {EMPTY}
    if len(spans) <= 1 and not others:
        return [records]
    spans.sort(key=lambda span: span.start)
    owner = {i: n for n, span in enumerate(spans) for i in span.own}
    by_span_id = {span.span_id: n for n, span in enumerate(spans) if span.span_id != EMPTY}
    groups: list[list[Record]] = [[] for _ in spans]
    apart: dict[str, list[Record]] = {}  # span ID (or EMPTY) -> records of no lifecycle span
    running = _Running(spans)
    for i, record in enumerate(records):
        span_id = _span_id(record)
        if span_id in by_span_id:
            groups[by_span_id[span_id]].append(record)
        elif i in owner:
            groups[owner[i]].append(record)
        elif span_id != EMPTY or not spans:
            apart.setdefault(span_id, []).append(record)
        else:
            groups[running.at(record.time)].append(record)
    ordered = [
        (min(spans[n].start, group[0].time), group) for n, group in enumerate(groups) if group
    ]
    ordered += [(group[0].time, group) for group in apart.values()]
    ordered.sort(key=lambda pair: pair[0])  # stable: a tie keeps the lifecycle request first
    return [group for _, group in ordered]


def _span_id(record: Record) -> str:
    value = record.fields.get("span_id")
    return str(value) if _known(value) else EMPTY


class _Running:
    """Which request was running at a time: the latest started whose span holds it (times
    are to the millisecond, so within 2 ms at worst), else the nearest one in time."""

    SLACKS = (timedelta(0), timedelta(milliseconds=2))
    LOOK_BACK = 64  # spans tried before the bisection point: more overlap is not a story

    def __init__(self, spans: list[_Span]) -> None:
        self.spans = spans  # sorted by start
        self.starts = [span.start for span in spans]

    def at(self, when: datetime) -> int:
        spans = self.spans
        for slack in self.SLACKS:
            last = bisect.bisect_right(self.starts, when + slack) - 1
            for n in range(last, max(last - self.LOOK_BACK, -1), -1):
                if when <= spans[n].end + slack:
                    return n
        near = bisect.bisect_left(self.starts, when)
        candidates = range(max(near - self.LOOK_BACK, 0), min(near + 1, len(spans)))
        return min(
            candidates,
            key=lambda n: min(abs(when - spans[n].start), abs(when - spans[n].end)),
        )
