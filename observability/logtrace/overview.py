"""The last hour or day at a glance, from the files alone: what the viewer's overview page draws.

    from observability.logtrace.overview import overview
    summary = overview(directory, minutes=60, threshold=1.0)

Reads the requests file and the security file (and their backups) backwards from their
ends, and stops at the first line older than the window (lines are in time order but for
a few seconds: SLACK), so an hour costs what the hour wrote, not what the files hold.
Of the requests file only terminal lines count (`API Request completed` / `failed`): each
is one request, re-weighted by its `sample_rate`; its status, duration and route are taken
from the bytes of a text line without parsing it whole (a line whose fields hold a quoted
value, a JSON or an ECS line is parsed), and a failed one is parsed whole for its error
group. Of the security file every line is an event of its `event_type` (a flood-control
summary stands for its `repeated=` count).

A `Budget` bounds the work whatever the files hold: past it the overview is `partial` and
covers the newest minutes only (`covered_from`). A central root (OBSERVABILITY['LOG_ROOT'],
one folder per host) is read host by host, each host's files within the budget, and the
counts are of every host together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from observability.lines import messages
from observability.lines.textline import SEPARATOR
from observability.logtrace.errorgroups import error_kind
from observability.logtrace.files import lines_backwards, log_files
from observability.logtrace.hosts import places
from observability.logtrace.linefields import (
    epoch_ms,
    event_count,
    finite_number,
    stamp,
    text_fields,
    weight_of,
)
from observability.logtrace.query import EMPTY
from observability.logtrace.records import REQUESTS, Record, parse_line, quick_time
from observability.logtrace.summary import duration_of
from observability.logtrace.tally import Overview, Tally, top_groups, top_routes

SECURITY = "security"
SLACK = timedelta(seconds=5)
_SEP = SEPARATOR.encode()
_COMPLETED = messages.COMPLETED.encode()
_FAILED = messages.FAILED.encode()
_COMPLETED_MARK = b"] " + _COMPLETED
_FAILED_MARK = b"] " + _FAILED
_KEYS = (b" status=", b" duration=", b" route=", b" sample_rate=")
_SECURITY_KEYS = (b" event_type=", b" repeated=")


@dataclass(frozen=True)
class Budget:
    """The most work one overview does in each file (with its backups): lines read (a
    microsecond or so each) and lines taken apart (a few microseconds each). The default
    reads the requests and security files whole at their default rotation (60 and 55 MB);
    at worst (every text line a request) it costs about 0.9 s of CPU for both, and 50,000
    JSON lines parsed whole about 0.5 s."""

    lines: int = 300_000
    parsed: int = 150_000
    #: Of those taken apart, the most parsed whole (JSON and ECS lines, failed requests'
    #: lines: tens of microseconds each).
    parsed_whole: int = 50_000


class _Reader:
    """One window's pass over the files: which lines are in it, and to which minute."""

    def __init__(self, tally: Tally, end: datetime, budget: Budget, base: str | None) -> None:
        self.tally = tally
        self.start, self.end = tally.start, end
        self.budget = budget
        self.base = base
        self.first, self.stop, self.last = (
            stamp(tally.start),
            stamp(tally.start - SLACK),
            stamp(end),
        )
        self.minute_of: dict[bytes, int] = {}
        self.lines_read = self.lines_parsed = self.parsed_whole = 0
        self.covered_from: datetime | None = None  # set when a budget stopped a file

    def _minute(self, head: bytes) -> int | None:
        """The minute a text line's first 16 bytes name, as an index into the window."""
        index = self.minute_of.get(head)
        if index is None:
            try:
                when = datetime(
                    int(head[0:4]), int(head[5:7]), int(head[8:10]), int(head[11:13]),
                    int(head[14:16]), tzinfo=UTC,
                )  # fmt: skip
            except ValueError:
                return None
            index = int((when - self.start).total_seconds()) // 60
            if len(self.minute_of) < 10_000:
                self.minute_of[head] = index
        return index if 0 <= index < self.tally.minutes else None

    def scan(
        self,
        directory: Path,
        tag: str,
        take_text: Callable[[bytes, str], bool],
        take_record: Callable[[Record, int], None],
        wanted: tuple[bytes, ...] = (),
    ) -> None:
        """Every line of `tag`'s files in the window, newest first: a text line to `take_text`
        (it says whether it took the line apart), a JSON or ECS line parsed to `take_record`
        when it holds one of `wanted` (any, when empty)."""
        read = parsed = 0
        whole = self.parsed_whole
        budget = self.budget
        oldest: bytes = b""
        for file_tag, path in reversed(log_files(directory, [tag])):
            for raw in lines_backwards(path):
                read += 1
                if (
                    read > budget.lines
                    or parsed >= budget.parsed
                    or self.parsed_whole - whole >= budget.parsed_whole
                ):
                    self._stopped(oldest)
                    self.lines_read += read - 1
                    self.lines_parsed += parsed
                    return
                if raw[:1] == b"{":
                    when = quick_time(raw)
                    if when is None or when >= self.end:
                        continue
                    if when < self.start:
                        if when < self.start - SLACK:
                            break
                        continue
                    oldest = raw
                    if wanted and not any(mark in raw for mark in wanted):
                        continue
                    parsed += 1
                    self.parsed_whole += 1
                    found = parse_line(raw.decode("utf-8", errors="replace"), file_tag)
                    if found is not None:
                        minute = int((found.time - self.start).total_seconds()) // 60
                        if 0 <= minute < self.tally.minutes:
                            take_record(found, minute)
                    continue
                head = raw[:23]
                if head < self.first:
                    if head < self.stop and quick_time(raw) is not None:
                        break
                    continue
                if head >= self.last:
                    continue
                oldest = raw
                if take_text(raw, file_tag):
                    parsed += 1
            else:
                continue
            break  # a line older than the window: the older backups are older still
        self.lines_read += read
        self.lines_parsed += parsed

    def _stopped(self, oldest: bytes) -> None:
        when = quick_time(oldest) if oldest else None
        covered = (when + SLACK) if when is not None else self.end
        if self.covered_from is None or covered > self.covered_from:
            self.covered_from = covered

    # -- the requests file

    def request_text(self, raw: bytes, file_tag: str) -> bool:
        if _COMPLETED_MARK not in raw and _FAILED_MARK not in raw:
            return False  # most lines: two searches in C
        head, _, rest = raw.partition(_SEP)
        message = head[head.find(b"] ") + 2 :]
        failed = message.startswith(_FAILED)
        minute = self._minute(raw[:16])
        if minute is None or (not failed and not message.startswith(_COMPLETED)):
            return False
        status, duration, route, rate = text_fields(rest, _KEYS)
        failed = failed or (status or "")[:1] == "5"
        if failed:  # few: parsed whole, for its error group
            self.parsed_whole += 1
            found = parse_line(raw.decode("utf-8", errors="replace"), file_tag)
            if found is not None:
                self.request_record(found, minute)
            return True
        self.tally.request(minute, route or EMPTY, finite_number(duration), False, weight_of(rate))
        return True

    def request_record(self, record: Record, minute: int) -> None:
        message = record.message
        if not message.startswith(messages.TERMINAL):
            return
        fields = record.fields
        status = str(fields.get("status", EMPTY))
        failed = message.startswith(messages.FAILED) or status[:1] == "5"
        route = str(fields.get("route") or EMPTY)
        rate = weight_of(fields.get("sample_rate"))
        self.tally.request(minute, route, finite_number(fields.get("duration")), failed, rate)
        if not failed:
            return
        kind = error_kind(message, status, record.traceback, self.base)
        user = str(fields.get("user_id") or EMPTY)
        if user == EMPTY:
            user = f"ip {fields.get('ip', EMPTY)}"
        started = record.time - duration_of(record)
        example = (record.request_id, str(fields.get("span_id") or EMPTY), epoch_ms(started))
        self.tally.error(kind, str(fields.get("view") or EMPTY), record.time, user, example)

    # -- the security file

    def security_text(self, raw: bytes, file_tag: str) -> bool:
        if self._minute(raw[:16]) is None:
            return False
        head, _, rest = raw.partition(_SEP)
        event_type, repeated = text_fields(rest, _SECURITY_KEYS)
        if event_type is None:  # a record that is no event (Django's own): its logger
            event_type = head[head.find(b"[") + 1 : head.find(b"]")].decode(errors="replace")
        self.tally.security_event(event_type, event_count(repeated))
        return True

    def security_record(self, record: Record, minute: int) -> None:
        fields = record.fields
        event_type = str(fields.get("event_type") or record.logger)
        self.tally.security_event(event_type, event_count(fields.get("repeated")))


def overview(
    directory: Path,
    *,
    minutes: int,
    threshold: float,
    now: datetime | None = None,
    budget: Budget | None = None,
    base: str | None = None,
) -> Overview:
    """The `minutes` whole minutes up to `now` (the current one last), from the files in
    `directory`; `threshold`: slow from this many seconds; `base`: the project's directory
    (frames under it are shown relative to it)."""
    now = now or datetime.now(UTC)
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    tally = Tally(start, minutes, threshold)
    reader = _Reader(tally, end, budget or Budget(), base)
    for _, folder in places(directory):  # one directory, or each host of a central root
        reader.scan(
            folder, REQUESTS, reader.request_text, reader.request_record, (_COMPLETED, _FAILED)
        )
        reader.scan(folder, SECURITY, reader.security_text, reader.security_record)
    by_p95, by_errors = top_routes(tally.routes())
    security = sorted(tally.security.items(), key=lambda item: (-item[1], item[0]))
    return Overview(
        start=start,
        minutes=minutes,
        requests=tally.requests,
        errors=tally.errors,
        slow=tally.slow,
        routes_by_p95=by_p95,
        routes_by_errors=by_errors,
        error_groups=top_groups(list(tally.groups.values())),
        error_group_count=len(tally.groups),
        security=security,
        reweighted=tally.reweighted,
        partial=reader.covered_from is not None,
        covered_from=reader.covered_from,
        lines_read=reader.lines_read,
        lines_parsed=reader.lines_parsed,
        computed_at=now,
        threshold=threshold,
    )
