"""One request ID's story: its records from every file, and the requests that used the ID.

`trace()` gathers every record of one request ID from every file in time order;
`story()` also splits them into the requests that shared the ID (a client may reuse or
forge one; `splitting`), each with its `Summary` (`summary`).

Only lines that hold the ID as a whole request ID value are read (`request_id_needles`),
and at most `limit` of them per file (the newest), so the story of any ID, even one a
client used for a million requests, costs a bounded number of parsed lines.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from observability.lines import messages
from observability.logtrace.files import lines_holding, log_files
from observability.logtrace.hosts import places, unique
from observability.logtrace.query import LEVELS, Filters
from observability.logtrace.records import Record, parse_line, request_id_needles
from observability.logtrace.splitting import split_by_request
from observability.logtrace.summary import Summary, is_terminal, summarise

#: The most lines of one request ID read per file tag (the newest): the story's work bound.
STORY_LINES = 2000
#: The security event the server writes when a client sends an ID it already used.
#: The server saw the request's ID, or its traceparent, sent before (observability.http.reuse).
REUSED_EVENTS = frozenset({"request_id_reused", "traceparent_reused"})


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
    # A record delivered twice (at-least-once shipping) once; one written to two files once.
    records = unique(records)
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
