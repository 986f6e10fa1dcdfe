"""The log writer: one bounded in-process queue and one listener thread per process.

Handlers (`observability.handlers`) run their filters in the caller's thread and hand
the record to `writer.submit()`; the listener takes what it finds waiting in batches and
gives each handler its records at once (one lock, one write, one flush per file per
batch). A full queue drops the record and counts it: a request never waits on the disk.
The queue is drained at exit and on SIGTERM (`observability.output.termination`), and a
forked child starts with an empty queue and its own listener.

The listener is also the process's clock: functions registered with `every_tick()` run
in it at least every TICK_INTERVAL (flood summaries whose window ended, held started
lines of requests past the slow threshold, metrics), and once more with `final=True`
when the process drains, before the last records are written.
"""

from __future__ import annotations

import atexit
import collections
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

BATCH_RECORDS = 512
WAKE_AT = 256  # records waiting before the producer wakes the listener early
IDLE_WAIT = 0.05  # seconds the listener sleeps when the queue is empty
TICK_INTERVAL = 0.05  # seconds between two runs of the tick hooks
REPORT_INTERVAL = 60.0  # seconds between two reports of the same fault on stderr
DEFAULT_QUEUE_SIZE = 10000


class BatchTarget(Protocol):
    """What the writer hands records to: a handler that writes a batch at once."""

    dropped: int
    written: int

    def write_batch(self, records: Sequence[Any]) -> None: ...


#: A tick hook: called with final=False on each tick, final=True once when draining.
TickHook = Callable[[bool], None]


def report(message: str) -> None:
    """Say something about the logging itself on stderr (never a record's contents)."""
    try:
        sys.stderr.write(f"observability: {message}\n")
        sys.stderr.flush()
    except Exception:  # noqa: S110 - nowhere left to report to
        pass


class LogWriter:
    """The process's bounded queue, its listener thread and its counters."""

    def __init__(self, maxsize: int = DEFAULT_QUEUE_SIZE) -> None:
        self.maxsize = maxsize
        self.targets: set[BatchTarget] = set()
        self.hooks: list[TickHook] = []
        self._reset()

    def _reset(self) -> None:
        self.synchronous = False  # set once the process is told to stop: write in place
        self._queue: collections.deque[tuple[BatchTarget | None, Any]] = collections.deque()
        self._wake = threading.Event()
        self._idle = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.dropped = 0
        self._last_drop_report = 0.0
        self._next_tick = 0.0
        self._last_hook_report = 0.0

    # --- producer side (the request thread) ---
    def submit(self, target: BatchTarget, record: Any) -> None:
        """Queue a LogRecord (or a line the fast path formatted already) for `target`."""
        if self.synchronous:
            target.write_batch([record])  # stopping: nothing may wait in a queue now
            if self._thread is None:
                self.tick()  # no listener to keep time: records do
            return
        if self._thread is None and not self._start():
            target.write_batch([record])  # no listener (interpreter exiting): write in place
            return
        queue = self._queue
        if len(queue) >= self.maxsize:
            self._drop(1)
            return
        queue.append((target, record))
        # Wake the listener only for a batch's worth: waking it per record would make the
        # request thread and the listener trade the GIL on every log call. Once: until the
        # listener runs (it may wait for the GIL a while), later records need not set the
        # event again (each set() takes its lock and notifies).
        if self._idle and len(queue) >= WAKE_AT:
            self._idle = False
            self._wake.set()

    def _drop(self, count: int) -> None:
        self.dropped += count
        thread = self._thread
        if thread is not None and not thread.is_alive():
            self._thread = None  # the listener died: the next record starts a new one
        now = time.monotonic()
        if now - self._last_drop_report >= REPORT_INTERVAL:
            self._last_drop_report = now
            report(
                f"log queue full ({self.maxsize} records): dropping records, "
                f"{self.dropped} dropped so far"
            )

    def start(self) -> None:
        """Make sure the listener runs (it ticks even when writing in place)."""
        if self._thread is None:
            self._start()

    def _start(self) -> bool:
        with self._start_lock:
            if self._thread is not None:
                return True
            thread = threading.Thread(target=self._run, name="observability-log-writer")
            thread.daemon = True
            try:
                thread.start()
            except RuntimeError:  # "can't create new thread at interpreter shutdown"
                return False
            self._thread = thread
            return True

    # --- the clock ---
    def tick(self) -> None:
        """Run the hooks if TICK_INTERVAL has passed since they last ran."""
        now = time.monotonic()
        if now >= self._next_tick:
            self._next_tick = now + TICK_INTERVAL
            self.run_hooks(final=False)

    def run_hooks(self, *, final: bool) -> None:
        for hook in list(self.hooks):
            try:
                hook(final)
            except Exception as exc:  # a hook's fault must not stop the writing
                now = time.monotonic()
                if now - self._last_hook_report >= REPORT_INTERVAL:
                    self._last_hook_report = now
                    report(f"tick hook {getattr(hook, '__qualname__', hook)} failed: {exc!r}")

    # --- listener side ---
    def _run(self) -> None:
        queue = self._queue
        while True:
            self.tick()
            if not queue:
                self._wake.clear()
                self._idle = True
                if not queue:
                    self._wake.wait(IDLE_WAIT)
                self._idle = False
                continue
            batch: dict[BatchTarget, list[Any]] = {}
            markers: list[threading.Event] = []
            stop = False
            for _ in range(BATCH_RECORDS):
                try:
                    target, item = queue.popleft()
                except IndexError:
                    break
                if target is None:  # control: a flush marker, a function to run, None to stop
                    if item is None:
                        stop = True
                    else:
                        markers.append(item)
                    continue
                batch.setdefault(target, []).append(item)
            for target, records in batch.items():
                target.write_batch(records)
            for marker in markers:
                if isinstance(marker, threading.Event):
                    marker.set()
                else:
                    marker()
            if stop:
                return

    def is_listener(self) -> bool:
        return self._thread is threading.current_thread()

    def queued(self) -> int:
        return len(self._queue)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            return not self._queue
        done = threading.Event()
        self._queue.append((None, done))
        self._wake.set()
        return done.wait(timeout)

    def drain(self, timeout: float = 5.0) -> bool:
        """Run the final hooks (pending summaries, held lines), then write everything queued.

        The hooks run in the listener, like every tick, so that a signal handler calling
        this never takes a hook's lock in the thread it interrupted.
        """
        deadline = time.monotonic() + timeout
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            self.run_hooks(final=True)
        else:
            done = threading.Event()

            def final() -> None:
                self.run_hooks(final=True)
                done.set()

            self._queue.append((None, final))
            self._wake.set()
            done.wait(timeout)
        return self.flush(max(deadline - time.monotonic(), 0.1))

    def stop(self, timeout: float = 5.0) -> None:
        """Drain the queue and stop the listener (process exit, gunicorn worker exit)."""
        self.drain(timeout)
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.append((None, None))
            self._wake.set()
            thread.join(timeout)
        self._thread = None

    def after_fork_in_child(self) -> None:
        # The parent writes what it had queued; the child starts empty with no thread.
        self._reset()


writer = LogWriter()
os.register_at_fork(after_in_child=writer.after_fork_in_child)
atexit.register(writer.stop)


def every_tick(hook: TickHook) -> TickHook:
    """Register `hook(final)` to run in the writer's thread on each tick and when draining."""
    if hook not in writer.hooks:
        writer.hooks.append(hook)
    return hook


def flush_logs(timeout: float = 5.0) -> bool:
    """Block until every record logged so far in this process is written."""
    return writer.flush(timeout)


def shutdown_writer() -> None:
    """Drain and stop the writer (gunicorn's worker_exit hook calls this)."""
    writer.stop()


def log_stats() -> dict[str, int]:
    """Counters: records waiting, written, dropped on a full queue, dropped on write errors."""
    return {
        "queued": writer.queued(),
        "written": sum(target.written for target in list(writer.targets)),
        "dropped_queue_full": writer.dropped,
        "dropped_write_errors": sum(target.dropped for target in list(writer.targets)),
    }
