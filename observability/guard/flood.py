"""Flood control: repeated records from one source are written up to a limit, then summarised.

Which loggers are guarded, and where the guard sits (a logger filter, and a handler filter
for the records no logger filter saw): `observability.guard.flood_loggers`. The decision is
kept on the record (`_obs_flood`), so a record written to the security file, the errors
file and the console is counted once, and each of them gets it or not.

Each record is counted under its key (`observability.guard.flood_keys`: event type and
client, or call site), in windows of FLOOD_WINDOW seconds from the key's first record (a
bounded table: `observability.guard.flood_windows`). The first FLOOD_LIMIT records of a
key in a window are written as usual; the others are counted, and once the window is over
one summary line says how many: `repeated=<N> first=<time> last=<time>`
(`observability.guard.flood_summaries`). Lines written one by one plus the `repeated=`
counts equal the records logged, exactly, in every file. A record its key would write
must also find room in its network's and everyone's budgets, shared by every worker
(`observability.guard.flood_shared`).

Windows are closed by the writer's tick (no later record needed), and every pending
summary is written when the process drains (SIGTERM, exit). Each process counts its
own records: with N workers a window holds at most N x (FLOOD_LIMIT + 1) lines per key.
"""

from __future__ import annotations

import logging
import os
import time

from observability.conf import obs_settings, on_reload
from observability.guard import flood_shared
from observability.guard.flood_keys import (
    DJANGO_SECURITY,
    NEVER,
    SECURITY,
    django_event_type,
    key_of,
)
from observability.guard.flood_loggers import _UNKNOWN, GuardedLoggers
from observability.guard.flood_summaries import SUMMARY_ATTR, summarise
from observability.guard.flood_windows import WindowTable
from observability.monitoring.metrics import count_security_event
from observability.output.writer import every_tick
from observability.tracing.context import reset_context, set_context

#: The guard's decision on a record (True: written, False: counted), taken once.
DECISION_ATTR = "_obs_flood"


class FloodGuard(WindowTable, GuardedLoggers):
    """Each key's first FLOOD_LIMIT records per window, then one summary (a logger filter;
    `at_handler()` is the same decision where a record is written)."""

    # -- which records

    def filter(self, record: logging.LogRecord) -> bool:
        """As a logger filter: decide for a record of a guarded logger."""
        attrs = record.__dict__
        decided = attrs.get(DECISION_ATTR)
        if decided is not None:
            return bool(decided)
        if attrs.get(SUMMARY_ATTR):
            return True
        kind = self.kind(record.name)
        if kind is None or kind == NEVER:
            return True
        return self.decide(record, kind)

    def at_handler(self, record: logging.LogRecord, security: bool) -> bool:
        """As a handler filter: the decision already taken for the record, or take it now
        for a record of a guarded logger (or any record, on the security file's handler)."""
        attrs = record.__dict__
        decided = attrs.get(DECISION_ATTR)
        if decided is not None:
            return bool(decided)
        kind = self.kinds.get(record.name, _UNKNOWN)
        if kind is None and not security:
            return True  # the usual record: a logger no setting names, a file not security's
        if attrs.get(SUMMARY_ATTR):
            return True
        if kind is _UNKNOWN:
            kind = self.kind(record.name)
        if kind is None:
            if not security:
                return True
            kind = SECURITY
            self._learned.add(record.name)
            self.kinds.pop(record.name, None)
        elif kind == NEVER:
            return True
        self._adopt(record.name)  # the logger's next records are decided before any handler
        return self.decide(record, str(kind))

    # -- counting

    def decide(self, record: logging.LogRecord, kind: str) -> bool:
        """Count the record under its key: True to write it, False when it is summarised."""
        if kind == SECURITY and record.name.startswith(DJANGO_SECURITY):
            # Django's own security records, in the metrics before flood control decides
            # (log_security_event counts the layer's events itself).
            count_security_event(django_event_type(record.name), record.levelname)
        settings = obs_settings
        limit: int = settings.FLOOD_LIMIT
        if not limit:
            return True
        key = key_of(record, kind)
        now = record.created
        with self._lock:
            window = self._window(key, now)
            written: bool = window.written < limit
            if written:
                window.written += 1
            else:
                self._count(window, record, now)
        if written:
            # The key would write it: so must its network's and everyone's budgets.
            merged = flood_shared.refusal(key[3] if kind == SECURITY else None)
            if merged is not None:
                written = False
                with self._lock:
                    window.written -= 1
                    merged_window = self._window((*key[:3], merged), now)
                    merged_window.written = limit  # never written one by one: counted
                    self._count(merged_window, record, now)
        record.__dict__[DECISION_ATTR] = written
        return written

    # -- summaries

    def sweep(self, final: bool = False) -> None:
        """Write the summaries of windows that are over (of every window when draining);
        put the guard on loggers made since the last tick."""
        loggers = logging.Logger.manager.loggerDict
        if len(loggers) != self._known or any(
            not isinstance(loggers.get(name), logging.PlaceHolder) for name in self._waiting
        ):
            self.adopt_descendants()
        if not self._windows and not self._closed:
            return
        now = time.time()
        length = obs_settings.FLOOD_WINDOW
        with self._lock:
            for key, window in list(self._windows.items()):
                if final or now >= window.start + length:
                    self._close(key, window)
            closed, self._closed = self._closed, {}
        if not closed:
            return
        token = set_context({})  # a summary stands for many requests: none is its context
        try:
            for key, window in closed.items():
                summarise(key, window, length)
        finally:
            reset_context(token)


guard = FloodGuard()
every_tick(guard.sweep)
os.register_at_fork(after_in_child=guard.after_fork_in_child)


@on_reload
def install() -> None:
    """Put the guard on the guarded loggers and their descendants (off the others)."""
    guard.place()
