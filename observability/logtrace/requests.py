"""One request's story, and the list of requests that match some filters.

`trace()` gathers every record of one request ID from every file (and says how many
requests shared the ID); `list_requests()` summarises each request of the requests file.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from observability import messages
from observability.conf import LEVEL_NAMES
from observability.logtrace.files import (
    is_json_file,
    lines_containing,
    log_files,
    read_lines,
)
from observability.logtrace.records import Record, parse_line
from observability.textline import field_pattern

LEVELS = {name: logging.getLevelName(name) for name in LEVEL_NAMES}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Filters:
    user: str | None = None
    ip: str | None = None
    path: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    slow: bool = False
    errors: bool = False
    level: int = 0

    def time_ok(self, when: datetime) -> bool:
        return (self.since is None or when >= self.since) and (
            self.until is None or when <= self.until
        )


@dataclass
class Summary:
    request_id: str
    first: datetime
    last: datetime
    method: str = "-"
    path: str = "-"
    user_id: str = "-"
    username: str = "-"
    ip: str = "-"
    status: str = "-"
    duration: str = "-"
    slow: bool = False
    failed: bool = False
    max_level: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    ended: bool = False
    saw_start: bool = False

    def add(self, record: Record) -> None:
        fields = record.fields
        self.first = min(self.first, record.time)
        self.last = max(self.last, record.time)
        self.counts[record.file] = self.counts.get(record.file, 0) + 1
        self.max_level = max(self.max_level, LEVELS.get(record.level, 0))
        for key in ("method", "path", "ip"):
            if getattr(self, key) == "-" and fields.get(key, "-") != "-":
                setattr(self, key, str(fields[key]))
        if fields.get("user_id", "-") not in ("-", None) and record.logger.endswith(".api"):
            self.user_id = str(fields["user_id"])
            self.username = str(fields.get("username", "-"))
        message = record.message
        if message.startswith(messages.STARTED):
            self.saw_start = True
        elif message.startswith(messages.TERMINAL):
            self.status = str(fields.get("status", self.status))
            self.duration = str(fields.get("duration", self.duration))
            if not self.saw_start:  # listing with a prefilter reads no started line
                with contextlib.suppress(TypeError, ValueError, OverflowError):
                    self.first = min(
                        self.first, record.time - timedelta(seconds=float(self.duration))
                    )
            self.failed = self.failed or message.startswith(messages.FAILED)
            self.ended = True
            if self.user_id == "-" and fields.get("user_id", "-") not in ("-", None):
                self.user_id = str(fields["user_id"])
                self.username = str(fields.get("username", "-"))
        elif message.startswith(messages.SLOW):
            self.slow = True

    def matches(self, filters: Filters) -> bool:
        if filters.user is not None and filters.user not in (self.user_id, self.username):
            return False
        if filters.ip is not None and self.ip != filters.ip:
            return False
        if filters.path is not None and not self.path.startswith(filters.path):
            return False
        if filters.slow and not self.slow:
            return False
        if filters.errors and not (self.failed or self.status.startswith("5")):
            return False
        if filters.level and self.max_level < filters.level:
            return False
        return filters.time_ok(self.first)

    SHOWN = ("method", "path", "user_id", "username", "ip", "status", "duration", "slow")

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "started": self.first.isoformat(timespec="milliseconds"),
            **{name: getattr(self, name) for name in self.SHOWN},
            "failed": self.failed,
            "records": dict(self.counts),
        }

    def line(self) -> str:
        flags = " ".join(f for f, on in (("SLOW", self.slow), ("FAILED", self.failed)) if on)
        return (
            f"{self.first:%Y-%m-%d %H:%M:%S} {self.request_id} {self.method} {self.path} "
            f"status={self.status} duration={self.duration} user={self.username}({self.user_id}) "
            f"ip={self.ip} {flags}".rstrip()
        )


def prefilter(filters: Filters) -> re.Pattern[bytes] | None:
    """A pattern every text line of a matching request's terminal line must contain.

    Listing with --user, --ip or --path then parses only the lines that can matter
    (terminal and slow lines carry the whole context) instead of every line.
    """
    if filters.user is not None:
        user = filters.user
        return re.compile(field_pattern("user_id", user) + b"|" + field_pattern("username", user))
    if filters.ip is not None:
        return re.compile(field_pattern("ip", filters.ip))
    if filters.path is not None:
        return re.compile(b'path="?' + re.escape(filters.path.encode()))
    return None


def trace(directory: Path, request_id: str, filters: Filters) -> tuple[Summary, list[Record]]:
    """Every record of one request ID from every file, in time order."""
    records: list[Record] = []
    needle = f"{request_id}"
    order = 0
    for tag, path in log_files(directory):
        for line in lines_containing(path, needle):
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


def summarise(request_id: str, records: list[Record]) -> Summary:
    summary = Summary(request_id, records[0].time if records else _EPOCH, _EPOCH)
    for record in records:
        summary.add(record)
    return summary


def split_by_request(records: list[Record]) -> list[list[Record]]:
    """The records of one request ID, one list per request that used it (by span ID).

    A client can send another request's ID; each request still has its own span ID, so
    the stories stay apart. Records without a span ID join the only request there is, or
    form a group of their own when several requests shared the ID.
    """
    groups: dict[str, list[Record]] = {}
    for record in records:
        groups.setdefault(str(record.fields.get("span_id", "-")), []).append(record)
    spans = [span for span in groups if span != "-"]
    if len(spans) <= 1:
        return [records] if records else []
    return [groups[span] for span in spans] + ([groups["-"]] if "-" in groups else [])


def _rank(message: str) -> int:
    """Within one millisecond: the started line first, the terminal and slow lines last."""
    if message.startswith(messages.STARTED):
        return 0
    if message.startswith(messages.TERMINAL):
        return 2
    if message.startswith(messages.SLOW):
        return 3
    return 1


MAX_OPEN = 100_000


def list_requests(directory: Path, filters: Filters, limit: int) -> list[Summary]:
    """One summary per matching request (from the requests file), newest last.

    Memory stays bounded: requests still open, plus a short window of ended ones (a slow
    warning follows its terminal line), plus the last `limit` matches.
    """
    open_requests: OrderedDict[str, Summary] = OrderedDict()
    ended: OrderedDict[str, Summary] = OrderedDict()
    done: deque[Summary] = deque(maxlen=limit)
    pattern = prefilter(filters)
    for tag, path in log_files(directory, ["requests"]):
        if pattern is None or is_json_file(path):
            lines = read_lines(path)
        else:
            lines = lines_containing(path, pattern)
        for line in lines:
            record = parse_line(line, tag)
            if record is None or record.request_id == "-":
                continue
            rid = record.request_id
            summary = open_requests.get(rid) or ended.get(rid)
            if summary is None:
                summary = open_requests[rid] = Summary(rid, record.time, record.time)
                if len(open_requests) > MAX_OPEN:  # started, never ended: forget the oldest
                    _flush(open_requests.popitem(last=False)[1], filters, done)
            was_ended = summary.ended
            summary.add(record)
            if summary.ended and not was_ended:
                ended[rid] = open_requests.pop(rid, summary)
                while len(ended) > ENDED_WINDOW:
                    _flush(ended.popitem(last=False)[1], filters, done)
    for summary in [*ended.values(), *open_requests.values()]:
        _flush(summary, filters, done)
    return sorted(done, key=lambda s: s.first)


ENDED_WINDOW = 2000


def _flush(summary: Summary, filters: Filters, done: deque[Summary]) -> None:
    if summary.matches(filters):
        done.append(summary)


def parse_when(value: str, now: datetime | None = None) -> datetime:
    """ISO time (UTC unless it says otherwise) or a relative age such as 15m, 2h, 1d, 30s."""
    now = now or datetime.now(UTC)
    match = re.fullmatch(r"(\d+)([smhd])", value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit] * amount
        return now - timedelta(seconds=seconds)
    when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
