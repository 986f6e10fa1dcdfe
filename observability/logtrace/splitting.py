"""One request ID's records split into the requests that used it (a client may reuse or
forge an ID): `split_by_request`.

Requests are told apart by their span IDs (each request has its own, on every record):
a span whose lifecycle lines are in the requests file is one request; records of a span
that has none (a request sampled out, or whose lifecycle lines are gone) are another,
kept apart rather than merged into whichever request ran at the time. Lines without span
IDs (written before them) go by time.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from observability.lines import messages
from observability.logtrace.query import EMPTY
from observability.logtrace.records import REQUESTS, Record
from observability.logtrace.summary import duration_of, is_terminal, known


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
        if known(published):
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
    return known(fields.get("task_id")) or known(fields.get("published_task_id"))


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
    return str(value) if known(value) else EMPTY


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
