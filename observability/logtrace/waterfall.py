"""One request as a waterfall: its spans, queries, outgoing calls and tasks as bars on one axis.

A span record (observability.spans.span) is written when its block ends and carries its
`duration`: it ran from `duration` before its time to its time. Queries of one shape are
one row (`x30 SELECT …`), each run a segment of it; spans and calls are a row each, nested
under the span that holds them (`parent_span_id`). A task the request published is a row
from its run's outcome line (succeeded, failed or retried, with its duration) on the same
axis: a task that ran after the response is a bar past the request's end.
`where_the_time_went()` splits the request's duration into the database (the terminal
line's `db_time`), outgoing calls and the rest: our own code (and the framework's).

The viewer draws these rows (observability/static/.../timeline.js); `logtrace` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from observability.lines import messages
from observability.logtrace.records import Record

KINDS = {"span": "span", "db_query": "query", "http_call": "call"}
#: A task's run ends with one of these lines (observability.background.tasks), its duration on it.
TASK_ENDS = frozenset({"succeeded", "failed", "retried"})


@dataclass
class Row:
    """One bar (or, for a query shape run many times, one row of segments)."""

    kind: str  # span | query | call | task
    label: str
    segments: list[tuple[float, float]]  # (start ms, duration ms) on the request's axis
    indexes: list[int]  # the records' places in the list the row was made from
    span_id: str = ""
    parent: str = ""
    depth: int = 1
    error: str = ""

    @property
    def start_ms(self) -> float:
        return min(start for start, _ in self.segments)

    @property
    def total_ms(self) -> float:
        return sum(duration for _, duration in self.segments)

    @property
    def end_ms(self) -> float:
        return max(start + duration for start, duration in self.segments)

    @property
    def count(self) -> int:
        return len(self.segments)

    @property
    def segments_text(self) -> str:
        """`start:duration ...` in milliseconds, for the viewer's drawing (a data attribute)."""
        return " ".join(f"{start:.3f}:{duration:.3f}" for start, duration in self.segments)

    @property
    def indexes_text(self) -> str:
        return " ".join(map(str, self.indexes))


@dataclass
class TimeSplit:
    """Where the request's time went, in milliseconds."""

    total_ms: float
    database_ms: float
    queries: int
    calls_ms: float
    calls: int
    spans: list[tuple[str, float]] = field(default_factory=list)  # top-level spans

    @property
    def own_ms(self) -> float:
        return max(self.total_ms - self.database_ms - self.calls_ms, 0.0)

    def parts(self) -> list[tuple[str, float, float]]:
        """(name, ms, percent of the request) for the database, calls and our own code."""
        total = self.total_ms or 1.0
        return [
            (name, ms, 100.0 * ms / total)
            for name, ms in (
                ("database", self.database_ms),
                ("outgoing calls", self.calls_ms),
                ("our own code", self.own_ms),
            )
        ]


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _label(kind: str, fields: dict[str, Any]) -> str:
    if kind == "span":
        return str(fields.get("span_name", "span"))
    if kind == "task":
        name, attempt = fields.get("task_name", "-"), fields.get("attempt", "-")
        return f"{name} (attempt {attempt}) -> {fields.get('task_event')}"
    if kind == "call":
        status = fields.get("call_status")
        outcome = fields.get("error") if status in (None, "-") else status
        host, path = fields.get("call_host", "-"), fields.get("call_path", "")
        return f"{fields.get('call_method', '-')} {host}{path} -> {outcome}"
    return str(fields.get("sql", "-"))


def rows(records: list[Record], start: datetime) -> list[Row]:
    """The request's span, query and call records as rows, in the order they started."""
    found: list[Row] = []
    shapes: dict[tuple[str, str], Row] = {}
    seen: set[str] = set()  # a record written to two files (general and debug) is one
    for index, record in enumerate(records):
        fields = record.fields
        kind = KINDS.get(str(fields.get("event_type")))
        if kind is None and fields.get("task_event") in TASK_ENDS:
            kind = "task"  # a task the request set off: its run, however long after
        duration = _number(fields.get("duration"))
        if kind is None or duration is None:
            continue
        identity = str(fields.get("record_id") or "")
        if identity:
            if identity in seen:
                continue
            seen.add(identity)
        ms = duration * 1000
        end = (record.time - start).total_seconds() * 1000
        segment = (max(end - ms, 0.0), ms)
        parent = str(fields.get("parent_span_id") or "")
        error = str(fields.get("error") or "")
        if kind == "task" and fields.get("task_event") == "failed":
            error = "failed"
        if kind == "query":
            key = (_label(kind, fields), parent)
            row = shapes.get(key)
            if row is not None:
                row.segments.append(segment)
                row.indexes.append(index)
                row.error = row.error or error
                continue
            row = shapes[key] = Row(kind, key[0], [segment], [index], parent=parent, error=error)
        else:
            # A call names the span it sent; a task's run is its own span.
            span_id = str(fields.get("span_id" if kind == "task" else "child_span_id") or "")
            label = _label(kind, fields)
            row = Row(kind, label, [segment], [index], span_id, parent, error=error)
        found.append(row)
    by_span = {row.span_id: row for row in found if row.span_id}
    for row in found:
        depth, holder, seen = 1, by_span.get(row.parent), set()
        while holder is not None and holder.span_id not in seen:
            seen.add(holder.span_id)
            depth += 1
            holder = by_span.get(holder.parent)
        row.depth = depth
    found.sort(key=lambda row: (row.start_ms, row.depth))
    return found


def where_the_time_went(records: list[Record], total_ms: float, found: list[Row]) -> TimeSplit:
    """The database's time (db_time of the terminal line, else its queries'), outgoing calls',
    and the rest: our own code."""
    database = queries = None
    for record in records:
        if record.message.startswith(messages.TERMINAL):
            database = _number(record.fields.get("db_time"))
            count = _number(record.fields.get("db_queries"))
            queries = int(count) if count is not None else None
    query_rows = [row for row in found if row.kind == "query"]
    if database is None:
        database = sum(row.total_ms for row in query_rows) / 1000
    if queries is None:
        queries = sum(row.count for row in query_rows)
    calls = [row for row in found if row.kind == "call"]
    spans = [(row.label, row.total_ms) for row in found if row.kind == "span" and row.depth == 1]
    return TimeSplit(
        total_ms,
        database * 1000,
        queries,
        sum(row.total_ms for row in calls),
        len(calls),
        spans,
    )


_CELLS = {"span": "=", "query": "#", "call": "~", "task": "+"}


def as_text(found: list[Row], split: TimeSplit, width: int = 40) -> list[str]:
    """The waterfall as text lines: a bar per row on a `width`-character axis."""
    total = max(split.total_ms, max((row.end_ms for row in found), default=0.0), 1e-9)
    lines = [
        "  where the time went: "
        + ", ".join(f"{name} {ms:.1f} ms ({percent:.0f}%)" for name, ms, percent in split.parts())
    ]
    lines.append(f"  {'request':>10} |{'=' * width}| {split.total_ms:.1f} ms")
    for row in found:
        cells = [" "] * width
        for begin, duration in row.segments:
            first = min(int(begin / total * width), width - 1)
            last = min(max(int((begin + duration) / total * width), first + 1), width)
            for cell in range(first, last):
                cells[cell] = _CELLS.get(row.kind, "~")
        count = f"x{row.count} " if row.count > 1 else ""
        error = f" !{row.error}" if row.error else ""
        indent = "  " * (row.depth - 1)
        lines.append(
            f"  {row.kind:>10} |{''.join(cells)}| {row.total_ms:.1f} ms {indent}{count}"
            f"{row.label}{error}"
        )
    return lines
