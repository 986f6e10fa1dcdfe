"""What to look for: the filters named like `logtrace`'s options (and the viewer's parameters).

Filters(user="alice", status="5xx", since=parse_when("15m"))
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from observability.conf import LEVEL_NAMES
from observability.logtrace.records import Record

LEVELS: dict[str, int] = {name: logging.getLevelName(name) for name in LEVEL_NAMES}
_STATUS = re.compile(r"[1-5](?:xx|\d\d)")
EMPTY = "-"


@dataclass
class Filters:
    user: str | None = None  # a user ID or a username
    ip: str | None = None
    path: str | None = None  # a prefix
    route: str | None = None  # the URL pattern, as the terminal line names it
    trace: str | None = None  # a trace ID
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None  # a class such as "5xx", or one code such as "404"
    slow: bool = False
    errors: bool = False
    level: int = 0
    host: str | None = None  # in a central root: only the requests this host served

    def __post_init__(self) -> None:
        if self.status is not None and not _STATUS.fullmatch(self.status):
            msg = f"status must be a class such as 5xx or a code such as 404, got {self.status!r}"
            raise ValueError(msg)

    def time_ok(self, when: datetime) -> bool:
        return (self.since is None or when >= self.since) and (
            self.until is None or when <= self.until
        )

    def status_ok(self, status: str) -> bool:
        if self.status is None:
            return True
        if self.status.endswith("xx"):
            return status[:1] == self.status[0] and len(status) == 3 and status[1:].isdigit()
        return status == self.status

    def record_matches(self, record: Record) -> bool:
        """Whether one record passes (`--follow`): each filter given, on the record's own fields.

        The route and the status are on terminal lines only, so with `--route` or `--status`
        only those are shown; `--slow`, `--errors` and the times are for whole requests.
        """
        if self.host is not None and record.host != self.host:
            return False
        fields = record.fields
        wanted = (
            (self.user, (fields.get("user_id"), fields.get("username"))),
            (self.ip, (fields.get("ip"),)),
            (self.trace, (fields.get("trace_id"),)),
            (self.route, (fields.get("route"),)),
        )
        for value, found in wanted:
            if value is not None and value not in [str(v) for v in found if v is not None]:
                return False
        if self.path is not None and not str(fields.get("path", "")).startswith(self.path):
            return False
        if self.status is not None and not self.status_ok(str(fields.get("status", EMPTY))):
            return False
        return LEVELS.get(record.level, 0) >= self.level


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
