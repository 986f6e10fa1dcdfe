"""Database queries per request: counted, timed, and the N+1 loop found, with no code in views.

`install()` (AppConfig.ready) puts one `execute_wrapper` on every database connection as
it opens, whatever its alias or thread. The request's lifecycle gives the request a
`QueryLog` (`begin()`); a query run where that log is in the context (the request's
thread, `sync_to_async`, `carry_context`) is counted in it, `executemany` included:

- on the default path, a query costs its timing, one dictionary lookup and one list
  append (threads of one request share the log: both are atomic in CPython);
- a raw SQL text run REPEATED_QUERY_COUNT times gets its call site (our own code's frame,
  the stack walked once); at the end, each such text whose runs also took at least
  REPEATED_QUERY_TIME seconds is one `repeated_query` WARNING: count, time, shape, site;
- a query of SLOW_QUERY_THRESHOLD seconds or more is a `slow_query` WARNING;
- with SPAN_LOGGER enabled at DB_QUERY_LEVEL (DEBUG by default), each query is a record
  of its own: shape (observability.spans.sqlshape, parameters never), duration, error, span ID.

`end()` gives the terminal line its `db_queries` and `db_time`. A query outside any
request costs one ContextVar read.
"""

from __future__ import annotations

import contextvars
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from django.db.backends.signals import connection_created

from observability.conf import obs_settings, on_reload
from observability.output.loggers import get_logger, level_of
from observability.spans.callsite import our_call_site
from observability.spans.span import error_name, span_record
from observability.spans.sqlshape import shown

#: Distinct SQL texts remembered per request: a request of generated SQL stays bounded.
MAX_TEXTS = 1000


class QueryLog(dict[str, list[float]]):
    """One request's queries: each SQL text -> the seconds of each of its runs.

    Shared by the threads serving the request: it lives in the context on purpose (a copy
    of the context holds the same log). No lock: every change is one operation the
    interpreter makes atomic (dict.setdefault, list.append), and start() sets the same
    values whichever thread runs it. The settings are read at the first query (start()):
    a request without queries costs this empty dictionary and the context's entry.
    """

    started = False
    threshold = 0
    level: int | None = None  # of the record per query; None: no such record
    slow = math.inf  # SLOW_QUERY_THRESHOLD
    other: list[float]  # runs of texts past MAX_TEXTS
    sites: dict[str, tuple[str, str]]  # sql -> (site, function), once repeated

    def start(self) -> None:
        """Read the settings (and whether SPAN_LOGGER takes DB_QUERY_LEVEL) at the first query."""
        attributes = vars(self)
        attributes.setdefault("other", [])
        attributes.setdefault("sites", {})
        settings = obs_settings
        level = level_of(settings.DB_QUERY_LEVEL)
        if level is not None and not get_logger("SPAN_LOGGER").isEnabledFor(level):
            level = None
        slow = settings.SLOW_QUERY_THRESHOLD
        self.threshold = settings.REPEATED_QUERY_COUNT
        self.level = level
        self.slow = math.inf if slow is None else slow
        self.started = True

    def add(self, sql: str, seconds: float) -> bool:
        """Count one query; True when its text has run `threshold` times and has no site."""
        if not self.started:
            self.start()
        runs = self.get(sql)
        if runs is None:
            if len(self) >= MAX_TEXTS:
                self.other.append(seconds)
                return False
            runs = self.setdefault(sql, [])
        runs.append(seconds)
        return len(runs) >= self.threshold and sql not in self.sites

    def totals(self) -> tuple[int, float]:
        """How many queries ran, and their seconds."""
        count, seconds = len(self.other), float(sum(self.other))
        for runs in self.values():
            count += len(runs)
            seconds += sum(runs)
        return count, seconds


_clock = time.perf_counter
_log: contextvars.ContextVar[QueryLog | None] = contextvars.ContextVar(
    "observability_queries", default=None
)


def watch(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """The execute_wrapper: time the query and count it in the request's log, if any."""
    log = _log.get()
    if log is None:
        return execute(sql, params, many, context)
    started = _clock()
    try:
        result = execute(sql, params, many, context)
    except BaseException as exc:
        _done(log, sql, _clock() - started, exc, many, context)
        raise
    seconds = _clock() - started
    if log.add(sql, seconds):  # _done, inlined: this is the path of every query
        log.sites[sql] = our_call_site()
    if seconds >= log.slow or log.level is not None:
        _after(log, sql, seconds, None, many, context)
    return result


def _done(
    log: QueryLog, sql: str, seconds: float, error: BaseException | None, many: bool, context: Any
) -> None:
    if log.add(sql, seconds):
        log.sites[sql] = our_call_site()
    if seconds >= log.slow or log.level is not None:
        _after(log, sql, seconds, error, many, context)


def _after(
    log: QueryLog, sql: str, seconds: float, error: BaseException | None, many: bool, context: Any
) -> None:
    """The per-query record and the slow query warning, when either is due."""
    level, threshold = log.level, log.slow
    if level is not None:
        fields: dict[str, Any] = {
            "event_type": "db_query",
            "sql": shown(sql),
            "duration": round(seconds, 6),
            "db_alias": getattr(context.get("connection"), "alias", None),
        }
        if many:
            fields["many"] = True
        if error is not None:
            fields["error"] = error_name(error)
        span_record(level, "Database query: %.3f ms", (seconds * 1000,), fields, stacklevel=4)
    if seconds >= threshold:
        fields = {
            "event_type": "slow_query",
            "sql": shown(sql),
            "duration": round(seconds, 6),
            "threshold": threshold,
        }
        message = "Slow query: %.3f s (threshold %s s)"
        span_record(logging.WARNING, message, (seconds, threshold), fields, stacklevel=4)


def begin() -> tuple[QueryLog, contextvars.Token[QueryLog | None]] | None:
    """A new log for this request's queries, in the context; None when DB_QUERIES is off."""
    if not obs_settings.DB_QUERIES:
        return None
    log = QueryLog()
    return log, _log.set(log)


#: stop(token): the log before begin()'s back in the context (the ContextVar's own method).
stop: Callable[[contextvars.Token[QueryLog | None]], None] = _log.reset


#: The terminal line's fields of a request without queries (read only: callers copy it).
NO_QUERIES: Mapping[str, Any] = {"db_queries": 0, "db_time": 0.0}


def end(log: QueryLog) -> Mapping[str, Any]:
    """The `repeated_query` warnings, then the terminal line's fields."""
    if not log:  # a request without queries (`other` fills only once the log is full)
        return NO_QUERIES
    count, seconds = log.totals()
    fields = {"db_queries": count, "db_time": round(seconds, 6)}
    if not log.sites:
        return fields
    minimum = obs_settings.REPEATED_QUERY_TIME
    for sql, (site, function) in list(log.sites.items()):
        runs = log[sql]
        count, seconds = len(runs), sum(runs)
        if seconds < minimum:
            continue
        warning = {
            "event_type": "repeated_query",
            "count": count,
            "db_time": round(seconds, 6),
            "sql": shown(sql),
            "site": site,
            "site_function": function,
        }
        message = "Repeated query: %d times, %.3f s, at %s"
        span_record(logging.WARNING, message, (count, seconds, site), warning)
    return fields


def _on_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Put the wrapper on a connection as it opens (once: a reconnect keeps its wrappers);
    with DB_QUERIES off, take it off: a query then costs nothing of ours."""
    wrappers = connection.execute_wrappers
    if not obs_settings.DB_QUERIES:
        if watch in wrappers:
            wrappers.remove(watch)
    elif watch not in wrappers:
        wrappers.insert(0, watch)


@on_reload
def _refresh() -> None:
    """The connections of this thread follow DB_QUERIES at once (others, as they reopen)."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        _on_connection(None, connection)


def install() -> None:
    """Watch every connection opened from now on, and those already open in this thread."""
    connection_created.connect(_on_connection, dispatch_uid="observability.spans.queries")
    _refresh()
