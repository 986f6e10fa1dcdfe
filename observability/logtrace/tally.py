"""The overview's sums: requests, errors and slow requests a minute, routes, error groups.

Each request counts `1 / sample_rate`: a sampled success line stands for the successes its
rate dropped (every error and slow request is written, at rate 1). Latency quantiles are
weighted the same way. Everything is kept in plain numbers, lists and dicts, so a finished
`Overview` pickles small into the Django cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from observability.logtrace.errorgroups import ErrorKind

#: The most routes and error groups kept apart; past them, further ones are one "other" row
#: (route names come from the URLconf, so this is only reached by a very large project).
KEYS_KEPT = 2000
OTHER = "(other)"
#: The most distinct users remembered per error group ("at least" past it).
USERS_KEPT = 10_000
TOP = 10


@dataclass
class RouteRow:
    route: str
    requests: float
    errors: float
    p95: float | None  # seconds

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass
class ErrorGroup:
    exception: str
    view: str
    frame: str
    count: int = 0
    users: int = 0  # distinct users affected (anonymous ones by IP), at most USERS_KEPT
    first: datetime | None = None
    last: datetime | None = None
    # The newest example: its story's link and what it said.
    request_id: str = "-"
    span_id: str = "-"
    started_ms: int = 0
    line: str = ""
    message: str = ""

    @property
    def users_capped(self) -> bool:
        return self.users >= USERS_KEPT


@dataclass
class Overview:
    """What the logs say about one window, minute by minute (index 0: the oldest minute)."""

    start: datetime
    minutes: int
    requests: list[float]
    errors: list[float]
    slow: list[float]
    routes_by_p95: list[RouteRow]
    routes_by_errors: list[RouteRow]
    error_groups: list[ErrorGroup]
    error_group_count: int
    security: list[tuple[str, int]]
    reweighted: bool  # some lines carried sample_rate < 1: counts are estimates
    partial: bool  # the budget ran out: only the minutes from `covered_from` on were read
    covered_from: datetime | None
    lines_read: int
    lines_parsed: int
    computed_at: datetime
    threshold: float

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)

    @property
    def total_requests(self) -> float:
        return sum(self.requests)

    @property
    def total_errors(self) -> float:
        return sum(self.errors)

    @property
    def total_slow(self) -> float:
        return sum(self.slow)

    @property
    def total_security(self) -> int:
        return sum(count for _, count in self.security)

    @property
    def covered_index(self) -> int:
        """The first minute read whole (0 unless the budget stopped the reading)."""
        if not self.partial or self.covered_from is None:
            return 0
        return max(math.ceil((self.covered_from - self.start).total_seconds() / 60), 0)


class Tally:
    """The running sums of one window, fed one terminal line at a time."""

    def __init__(self, start: datetime, minutes: int, threshold: float) -> None:
        self.start = start
        self.minutes = minutes
        self.threshold = threshold
        self.requests = [0.0] * minutes
        self.errors = [0.0] * minutes
        self.slow = [0.0] * minutes
        self.durations: dict[str, list[tuple[float, float]]] = {}  # route -> (seconds, weight)
        self.route_requests: dict[str, float] = {}
        self.route_errors: dict[str, float] = {}
        self.groups: dict[tuple[str, str, str], ErrorGroup] = {}
        self.users: dict[tuple[str, str, str], set[str]] = {}
        self.security: dict[str, int] = {}
        self.reweighted = False

    def request(
        self, minute: int, route: str, duration: float | None, failed: bool, weight: float
    ) -> None:
        if weight != 1.0:
            self.reweighted = True
        self.requests[minute] += weight
        if route not in self.route_requests and len(self.route_requests) >= KEYS_KEPT:
            route = OTHER
        self.route_requests[route] = self.route_requests.get(route, 0.0) + weight
        if failed:
            self.errors[minute] += weight
            self.route_errors[route] = self.route_errors.get(route, 0.0) + weight
        if duration is not None:
            if duration >= self.threshold:
                self.slow[minute] += weight
            self.durations.setdefault(route, []).append((duration, weight))

    def error(
        self,
        kind: ErrorKind,
        view: str,
        when: datetime,
        user: str,
        example: tuple[str, str, int],
    ) -> None:
        """One failed request (`example`: its request ID, span ID and start in epoch ms)."""
        key = (kind.exception, view, kind.frame)
        group = self.groups.get(key)
        if group is None:
            if len(self.groups) >= KEYS_KEPT:
                key = (OTHER, OTHER, OTHER)
                group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = ErrorGroup(*key)
        group.count += 1
        users = self.users.setdefault(key, set())
        if len(users) < USERS_KEPT:
            users.add(user)
            group.users = len(users)
        group.first = when if group.first is None else min(group.first, when)
        if group.last is None or when >= group.last:
            group.last = when
            group.request_id, group.span_id, group.started_ms = example
            group.line, group.message = kind.line, kind.message

    def security_event(self, event_type: str, count: int) -> None:
        if event_type not in self.security and len(self.security) >= KEYS_KEPT:
            event_type = OTHER
        self.security[event_type] = self.security.get(event_type, 0) + count

    def routes(self) -> list[RouteRow]:
        return [
            RouteRow(
                route,
                count,
                self.route_errors.get(route, 0.0),
                weighted_quantile(self.durations.get(route, []), 0.95),
            )
            for route, count in self.route_requests.items()
        ]


def weighted_quantile(values: list[tuple[float, float]], q: float) -> float | None:
    """The smallest value whose share of the total weight at or below it reaches `q`."""
    if not values:
        return None
    values.sort()
    total = sum(weight for _, weight in values)
    target = q * total
    running = 0.0
    for value, weight in values:
        running += weight
        if running >= target - 1e-9:
            return value
    return values[-1][0]


def top_routes(rows: list[RouteRow]) -> tuple[list[RouteRow], list[RouteRow]]:
    """The TOP routes by p95 latency, and those by errors (only routes with some)."""
    by_p95 = sorted(
        (row for row in rows if row.p95 is not None),
        key=lambda row: (-(row.p95 or 0.0), -row.requests, row.route),
    )
    by_errors = sorted(
        (row for row in rows if row.errors > 0),
        key=lambda row: (-row.errors, -row.error_ratio, row.route),
    )
    return by_p95[:TOP], by_errors[:TOP]


def top_groups(groups: list[ErrorGroup], limit: int = 20) -> list[ErrorGroup]:
    """The most frequent error groups, then the most recent."""
    return sorted(
        groups, key=lambda g: (-g.count, -(g.last.timestamp() if g.last else 0.0), g.exception)
    )[:limit]
