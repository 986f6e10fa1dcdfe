"""Flood control's table: each key's window of FLOOD_WINDOW seconds, however many keys come.

The table is bounded: at most MAX_KEYS keys, and at most MAX_KEYS_PER_SOURCE of one client.
A new key past either bound closes the oldest (of the table, of that client) early: its
count is summarised like any window's, never lost, and no client is merged with another.
Closed windows wait for the tick in a table of at most MAX_CLOSED; past it (a stalled
writer under a flood from ever new clients) they wait merged per event type or call site
(client "*"), counts exact. A window keeps its first summarised record's message masked,
then capped at ARG_LIMIT.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from observability.conf import obs_settings
from observability.guard.flood_keys import Key
from observability.masking.escaping import ARG_LIMIT
from observability.masking.redaction import get_redactor
from observability.output.writer import writer

#: Keys counted at once; a new key past it closes the oldest window early (summarised).
MAX_KEYS = 10_000
#: Keys one client (one source) may hold at once; past it, its own oldest is closed early.
MAX_KEYS_PER_SOURCE = 100
#: Windows closed early that may wait for the tick's summaries, each on its own.
MAX_CLOSED = 10_000
#: The client of summaries that wait merged (more than MAX_CLOSED between two ticks).
OTHER_CLIENTS = "*"
#: What a summary copies from the first record it stands for.
COPIED = ("event_type", "severity")


@dataclass
class Window:
    start: float
    written: int = 0
    suppressed: int = 0
    first: float = 0.0
    last: float = 0.0
    example: dict[str, Any] = field(default_factory=dict)


class WindowTable:
    """Each key's open window, and the windows closed since the last tick (under `_lock`)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._windows: dict[Key, Window] = {}
        self._sources: dict[str, dict[Key, None]] = {}  # a client's keys, oldest first
        self._closed: dict[Key, Window] = {}  # over, waiting for the tick's summary

    def _window(self, key: Key, now: float) -> Window:
        """The key's open window (a new one when none is, or its window is over); locked."""
        windows = self._windows
        window = windows.get(key)
        if window is not None and now >= window.start + obs_settings.FLOOD_WINDOW:
            self._close(key, window)
            window = None
        if window is None:
            self._make_room(key[3])
            window = windows[key] = Window(now)
            self._sources.setdefault(key[3], {})[key] = None
            writer.start()  # its tick closes the window
        return window

    def _count(self, window: Window, record: logging.LogRecord, now: float) -> None:
        """Count a record that is not written, in the window its summary will stand for."""
        if not window.suppressed:
            window.first = now
            window.example = self._example(record)
        window.suppressed += 1
        window.last = now

    def _make_room(self, source: str) -> None:
        """Close the oldest windows (of this client, of the table) that a new key would push
        past MAX_KEYS_PER_SOURCE or MAX_KEYS; their counts go to summaries."""
        keys = self._sources.get(source)
        if keys is not None and len(keys) >= MAX_KEYS_PER_SOURCE:
            oldest = next(iter(keys))
            self._close(oldest, self._windows[oldest])
        windows = self._windows
        while len(windows) >= MAX_KEYS:
            oldest = next(iter(windows))
            self._close(oldest, windows[oldest])

    @staticmethod
    def _example(record: logging.LogRecord) -> dict[str, Any]:
        """What a summary shows of the first record it stands for. The message is masked,
        then capped (ARG_LIMIT): a table of MAX_KEYS windows never holds 8 KB Host headers."""
        attrs = record.__dict__
        example = {key: attrs[key] for key in COPIED if key in attrs}
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        example["message"] = get_redactor().text(message, ARG_LIMIT)
        example["call_site"] = f"{record.module}.{record.funcName}:{record.lineno}"
        return example

    def _close(self, key: Key, window: Window) -> None:
        del self._windows[key]
        keys = self._sources.get(key[3])
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._sources[key[3]]
        if not window.suppressed:
            return
        closed = self._closed
        if key not in closed and len(closed) >= MAX_CLOSED:
            # More closed windows than that wait for the tick (a writer stalled on a slow
            # disk under a flood from ever new clients): the rest wait as one per event
            # type or call site, their clients "*", counts exact.
            key = (*key[:3], OTHER_CLIENTS)
        pending = closed.get(key)
        if pending is None:
            closed[key] = window
        else:  # the same key closed twice before a tick: one summary stands for both
            pending.first = min(pending.first, window.first)
            pending.last = max(pending.last, window.last)
            pending.suppressed += window.suppressed

    def size(self) -> int:
        """Keys counted now (bounded by MAX_KEYS)."""
        return len(self._windows)

    def pending(self) -> int:
        """Records counted but not yet in a summary (for tests and /health/)."""
        with self._lock:
            windows = [*self._windows.values(), *self._closed.values()]
            return sum(window.suppressed for window in windows)

    def forget(self) -> None:
        """Drop every count without a summary (tests start from nothing)."""
        with self._lock:
            self._windows = {}
            self._sources = {}
            self._closed = {}

    def after_fork_in_child(self) -> None:
        # The parent summarises what it counted; the child starts from nothing.
        self._lock = threading.Lock()
        self.forget()
