"""Which requests' lifecycle lines are written: exclusions, tail-based sampling, held lines.

`SAMPLE_RATE` keeps that fraction of fast successful requests (2xx/3xx under the slow
threshold); every 4xx, 5xx and slow request is written whatever the rate, and so is
every other record (security events, the application's own). The decision is a keyed
hash of the request ID (BLAKE2b, its key derived from SECRET_KEY): the same in every
process and host of the deployment, so the workers that share an ID agree, and no client
can compute it for the IDs it chooses.

A request is never half-logged: both lifecycle lines, or neither.

- Kept by its hash: the started line is written at the start, as without sampling.
- Dropped by its hash: its started record is made at the start (with its own time and
  context) and held in memory. At the end a 4xx, 5xx or slow request writes it, then
  its terminal line; a fast success writes neither.
- Still running at the slow threshold: it will be slow, so the writer's tick writes its
  held started line then. A hung request is in the requests file while it hangs.
- Draining (SIGTERM, exit): the held started lines of every request in flight are
  written; their terminal lines follow if the server lets them finish.

What a SIGKILL still loses: held started lines of requests younger than the slow
threshold (besides what waits in the writer's queue).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from observability.conf import obs_settings
from observability.output.loggers import level_of
from observability.output.writer import every_tick, writer
from observability.tracing.keyed import keyed_digest

_RANGE = 2.0**64  # the hash is 64 bits: kept when below rate x 2^64
#: Writes one lifecycle line (a record to its logger, or a prepared line to its handlers).
Deliver = Callable[[], Any]
#: A held line is written after this long even if the slow threshold is longer (or
#: infinite): the memory of an abandoned stream's lifecycle is let go.
HOLD_LIMIT = 3600.0


def excluded(path: str) -> bool:
    """Whether a path gets no lifecycle lines (EXCLUDE_PATHS prefixes, EXCLUDE_PATTERNS).

    `path` is the one the router matches (`request.path_info`), never `request.path`:
    that starts with SCRIPT_NAME, which a proxy passes on from the client (gunicorn takes
    it from a header), so `SCRIPT_NAME: /health` would hide a login attempt.
    """
    settings = obs_settings
    if path.startswith(settings.EXCLUDE_PATHS):
        return True
    patterns = settings.EXCLUDE_PATTERNS
    return bool(patterns) and any(pattern.search(path) for pattern in patterns)


def keeps(request_id: str, rate: float) -> bool:
    """Whether the keyed hash of `request_id` falls in the kept fraction `rate` (0.0 to 1.0).

    A client chooses its request IDs: with a public hash it could pick, offline, IDs whose
    successes are never written. Keyed by the deployment's secret (observability.tracing.keyed),
    the decision is still the same in every worker and host that share SECRET_KEY (Python's
    hash() is salted per process), and 64 bits of BLAKE2b spread IDs that differ only in
    their last characters (req-1, req-2 ...) evenly over the range.
    """
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return int.from_bytes(keyed_digest("sampling", request_id, 8)) < rate * _RANGE


def sample_for(request_id: str, logger: logging.Logger, started: float) -> Sample | KeepAll:
    """The request's sampling; with SAMPLE_RATE 1 (the default), one shared answer: keep."""
    if obs_settings.SAMPLE_RATE >= 1.0:
        completed = level_of(obs_settings.COMPLETED_LEVEL) or logging.INFO
        if logger.isEnabledFor(completed):
            return KEEP_ALL
    return Sample(request_id, logger, started)


class KeepAll:
    """SAMPLE_RATE 1: every request kept by its hash, nothing held, no sample_rate field."""

    __slots__ = ()
    by_hash = True

    def hold(self, deliver: Deliver) -> None:  # never called: by_hash is True
        deliver()

    def end(self, *, worth_keeping: bool) -> dict[str, Any] | None:
        return {}


KEEP_ALL = KeepAll()


class Sample:
    """One request's sampling: whether its success lines are written, its held started line."""

    __slots__ = ("_held", "by_hash", "due", "logger", "rate")

    def __init__(self, request_id: str, logger: logging.Logger, started: float) -> None:
        settings = obs_settings
        self.rate: float = settings.SAMPLE_RATE
        self.logger = logger
        # A success's completed line below the logger's level is a success not written:
        # its started line is then held like a sampled-out one, never half a pair.
        completed = level_of(settings.COMPLETED_LEVEL) or logging.INFO
        self.by_hash = logger.isEnabledFor(completed) and keeps(request_id, self.rate)
        self.due = started + min(settings.SLOW_REQUEST_THRESHOLD, HOLD_LIMIT)
        self._held = False

    def hold(self, deliver: Deliver) -> None:
        """Hold the started line of a request the hash drops (`by_hash` is False).

        `deliver` writes the line; it carries the request's context with it (the tick
        may call it from another thread, where this context is not bound).
        """
        held_lines.hold(self, deliver)
        self._held = True

    def end(self, *, worth_keeping: bool) -> dict[str, Any] | None:
        """At the terminal line: None to write nothing, else the fields the line carries.

        `worth_keeping`: a 4xx, a 5xx or a slow request. Its held started line is
        written first; one the tick or a drain already wrote means the terminal line
        must follow it.
        """
        kept = self.by_hash or worth_keeping
        if self._held:
            deliver = held_lines.take(self)
            if deliver is None:
                kept = True  # written already (slow threshold reached, or draining)
            elif kept:
                deliver()
        if not kept:
            return None
        if self.rate >= 1.0:
            return {}
        # The probability this line had of being written, to re-weight counts by.
        return {"sample_rate": self.rate if self.by_hash and not worth_keeping else 1.0}


class HeldLines:
    """Started records of in-flight requests the hash dropped, until they prove worth keeping."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[Sample, Deliver] = {}

    def hold(self, sample: Sample, deliver: Deliver) -> None:
        with self._lock:
            self._held[sample] = deliver
        writer.start()  # its tick writes the line of a request that hangs

    def take(self, sample: Sample) -> Deliver | None:
        """The held line's writer, or None if it was written already."""
        with self._lock:
            return self._held.pop(sample, None)

    def __len__(self) -> int:
        return len(self._held)

    def release(self, final: bool) -> None:
        """Write the held lines of requests past their slow threshold (all when draining)."""
        if not self._held:
            return
        now = time.perf_counter()
        # Written under the lock: a request ending meanwhile waits in take(), so its
        # terminal line is queued after its started line.
        with self._lock:
            for sample in list(self._held):
                # Held in the order requests started, so the first not yet due ends the
                # scan (a request held a moment after a later one waits one more tick).
                if not final and sample.due > now:
                    break
                self._held.pop(sample)()

    def after_fork_in_child(self) -> None:
        # The parent's requests in flight are the parent's to finish.
        self._lock = threading.Lock()
        self._held = {}


held_lines = HeldLines()
every_tick(held_lines.release)
os.register_at_fork(after_in_child=held_lines.after_fork_in_child)
