"""Flood control: repeated records from one source are written up to a limit, then summarised.

A guarded logger (SECURITY_LOGGER, and every name in FLOOD_LOGGERS) counts its records
per key, in windows of FLOOD_WINDOW seconds from the key's first record:

- a security event: key (event type, client IP), so one client's 140,000 failed
  logins cannot rotate the security history away;
- any other record of a guarded logger: key (call site), a storm of one error from
  one code path, whichever clients set it off.

The key also holds the logger and the level, so a summary reaches the same files as
the records it stands for. The first FLOOD_LIMIT records of a key in a window are
written as usual; the others are counted, and once the window is over one summary
line says how many: `repeated=<N> first=<time> last=<time>`. Lines written one by one
plus the `repeated=` counts equal the records logged, exactly, in every file.

Windows are closed by the writer's tick (no later record needed), and every pending
summary is written when the process drains (SIGTERM, exit). Each process counts its
own records: with N workers a window holds at most N x (FLOOD_LIMIT + 1) lines per key.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from observability.conf import obs_settings, on_reload
from observability.context import EMPTY, current, reset_context, set_context
from observability.writer import every_tick, writer

#: Set on a summary record so the guard lets it through.
SUMMARY_ATTR = "_obs_flood_summary"
#: Keys counted at once; past it, new clients share one key per event type ("*").
MAX_KEYS = 10_000
OTHER_CLIENTS = "*"
#: What a summary copies from the first record it stands for.
_COPIED = ("event_type", "severity")

Key = tuple[str, int, str, str]  # logger, level, event type or call site, client


@dataclass
class _Window:
    start: float
    written: int = 0
    suppressed: int = 0
    first: float = 0.0
    last: float = 0.0
    example: dict[str, Any] = field(default_factory=dict)


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class FloodGuard(logging.Filter):
    """A logger filter: each key's first FLOOD_LIMIT records per window, then one summary."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._windows: dict[Key, _Window] = {}
        self._closed: list[tuple[Key, _Window]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        attrs = record.__dict__
        if attrs.get(SUMMARY_ATTR):
            return True
        settings = obs_settings
        limit = settings.FLOOD_LIMIT
        if not limit:
            return True
        key = self._key(record)
        now = record.created
        with self._lock:
            windows = self._windows
            window = windows.get(key)
            if window is not None and now >= window.start + settings.FLOOD_WINDOW:
                self._close(key, window)
                window = None
            if window is None:
                if len(windows) >= MAX_KEYS:
                    key = (*key[:3], OTHER_CLIENTS)
                    window = windows.get(key)
                if window is None:
                    window = windows[key] = _Window(now)
                    writer.start()  # its tick closes the window
            if window.written < limit:
                window.written += 1
                return True
            if not window.suppressed:
                window.first = now
                window.example = self._example(record)
            window.suppressed += 1
            window.last = now
            return False

    def _key(self, record: logging.LogRecord) -> Key:
        attrs = record.__dict__
        event_type = attrs.get("event_type")
        if record.name == obs_settings.SECURITY_LOGGER:
            client = attrs.get("ip") or current()["ip"] or EMPTY
            kind = str(event_type) if event_type else f"{record.pathname}:{record.lineno}"
            return record.name, record.levelno, kind, str(client)
        return record.name, record.levelno, f"{record.pathname}:{record.lineno}", EMPTY

    @staticmethod
    def _example(record: logging.LogRecord) -> dict[str, Any]:
        attrs = record.__dict__
        example = {key: attrs[key] for key in _COPIED if key in attrs}
        try:
            example["message"] = record.getMessage()
        except Exception:
            example["message"] = str(record.msg)
        example["call_site"] = f"{record.module}.{record.funcName}:{record.lineno}"
        return example

    def _close(self, key: Key, window: _Window) -> None:
        del self._windows[key]
        if window.suppressed:
            self._closed.append((key, window))

    def sweep(self, final: bool = False) -> None:
        """Write the summaries of windows that are over (of every window when draining)."""
        if not self._windows and not self._closed:
            return
        now = time.time()
        length = obs_settings.FLOOD_WINDOW
        with self._lock:
            for key, window in list(self._windows.items()):
                if final or now >= window.start + length:
                    self._close(key, window)
            closed, self._closed = self._closed, []
        if not closed:
            return
        token = set_context({})  # a summary stands for many requests: none is its context
        try:
            for key, window in closed:
                self._summarise(key, window, length)
        finally:
            reset_context(token)

    def _summarise(self, key: Key, window: _Window, length: float) -> None:
        name, level, _, client = key
        example = window.example
        count = window.suppressed
        if "event_type" in example:
            message = (
                f"Security Event: {example['event_type']} - Severity: "
                f"{example.get('severity', '-')}, Repeated: {count} more from {client}"
            )
        else:
            message = f"Repeated: {count} more records like: {example['message']}"
        fields = {
            **{key: example[key] for key in _COPIED if key in example},
            "repeated": count,
            "first": _iso(window.first),
            "last": _iso(window.last),
            "window": length,
            SUMMARY_ATTR: True,
        }
        if "event_type" not in example:  # an event's call site is the event helper's
            fields["call_site"] = example["call_site"]
        if client != EMPTY:
            fields["ip"] = client
        logger = logging.getLogger(name)
        record = logger.makeRecord(name, level, __file__, 0, message, (), None, "sweep", fields)
        logger.handle(record)

    def pending(self) -> int:
        """Records counted but not yet in a summary (for tests and /health/)."""
        with self._lock:
            windows = [*self._windows.values(), *(w for _, w in self._closed)]
            return sum(window.suppressed for window in windows)

    def forget(self) -> None:
        """Drop every count without a summary (tests start from nothing)."""
        with self._lock:
            self._windows = {}
            self._closed = []

    def after_fork_in_child(self) -> None:
        # The parent summarises what it counted; the child starts from nothing.
        self._lock = threading.Lock()
        self.forget()


guard = FloodGuard()
every_tick(guard.sweep)
os.register_at_fork(after_in_child=guard.after_fork_in_child)
_guarded: set[str] = set()


@on_reload
def install() -> None:
    """Put the guard on SECURITY_LOGGER and every FLOOD_LOGGERS logger (off the others)."""
    settings = obs_settings
    names = {settings.SECURITY_LOGGER, *settings.FLOOD_LOGGERS}
    for name in _guarded - names:
        logging.getLogger(name).removeFilter(guard)
    for name in names - _guarded:
        logging.getLogger(name).addFilter(guard)
    _guarded.clear()
    _guarded.update(names)
