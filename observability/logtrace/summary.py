"""One request as its records tell it: who, what, how it ended (`Summary`, `summarise`).

A request's records are read in time order, or from the end (the listing): the terminal
line carries its whole context, so a summary built from it alone says when it started
(`duration` before the line) as well as how it ended.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from observability.lines import messages
from observability.logtrace.query import EMPTY, LEVELS, Filters
from observability.logtrace.records import REQUESTS, Record, typed
from observability.masking.escaping import escape

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
    host: str = EMPTY  # the host that served it (read from a central root)

    def add(self, record: Record) -> None:
        fields = record.fields
        self.first = min(self.first, record.time)
        self.last = max(self.last, record.time)
        for file in (record.file, *record.also_in):
            self.counts[file] = self.counts.get(file, 0) + 1
        self.max_level = max(self.max_level, LEVELS.get(record.level, 0))
        if self.host == EMPTY and record.host:
            self.host = record.host
        for key in _FIRST_SEEN:
            if getattr(self, key) == EMPTY and known(fields.get(key)):
                setattr(self, key, str(fields[key]))
        message = record.message
        if known(fields.get("user_id")) and (
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


def known(value: Any) -> bool:
    """Whether a record names the value (neither absent nor the `-` marker)."""
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
            if known(record.fields.get("user_id")):
                summary.user_id = str(record.fields["user_id"])
                summary.username = str(record.fields.get("username", EMPTY))
                break
    return summary
