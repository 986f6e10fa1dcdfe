"""Never block, never lose: queued handlers with one listener thread per process.

The handlers' filters (context, redaction) run in the caller's thread; the record is
then appended to a bounded in-process queue. One listener thread formats and writes
what it finds waiting in batches: one lock, one write and one flush per file per batch.
Files rotate through concurrent-log-handler, so several worker processes can share
them. A full queue drops the record and counts it; a file that cannot be written costs
its records (counted, reported once a minute on stderr without their contents) until
the fault clears. The queue is drained at exit and the listener restarted after fork.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any, TextIO

from concurrent_log_handler import ConcurrentRotatingFileHandler

BATCH_RECORDS = 512
WAKE_AT = 256  # records waiting before the producer wakes the listener early
IDLE_WAIT = 0.05  # seconds the listener sleeps when the queue is empty
BATCH_BYTES = 256 * 1024
REPORT_INTERVAL = 60.0
DEFAULT_QUEUE_SIZE = 10000


def _stderr(message: str) -> None:
    try:
        sys.stderr.write(f"observability: {message}\n")
        sys.stderr.flush()
    except Exception:  # noqa: S110 - nowhere left to report to
        pass


class LogWriter:
    """The process's bounded queue and its listener thread."""

    def __init__(self, maxsize: int = DEFAULT_QUEUE_SIZE) -> None:
        self.maxsize = maxsize
        self._reset()

    def _reset(self) -> None:
        self.synchronous = False  # set once the process is told to stop: write in place
        self._queue: collections.deque = collections.deque()
        self._wake = threading.Event()
        self._idle = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.dropped = 0
        self._last_drop_report = 0.0

    # --- producer side (the request thread) ---
    def submit(self, handler: QueuedHandler, record: logging.LogRecord) -> None:
        if self.synchronous:
            handler.write_batch([record])  # stopping: nothing may wait in a queue now
            return
        if self._thread is None and not self._start():
            handler.write_batch([record])  # no listener (interpreter exiting): write in place
            return
        if len(self._queue) >= self.maxsize:
            self._drop(1)
            return
        queue = self._queue
        queue.append((handler, record))
        # Wake the listener only for a batch's worth: waking it per record would make the
        # request thread and the listener trade the GIL on every log call.
        if self._idle and len(queue) >= WAKE_AT:
            self._wake.set()

    def _drop(self, count: int) -> None:
        self.dropped += count
        thread = self._thread
        if thread is not None and not thread.is_alive():
            self._thread = None  # the listener died: the next record starts a new one
        now = time.monotonic()
        if now - self._last_drop_report >= REPORT_INTERVAL:
            self._last_drop_report = now
            _stderr(
                f"log queue full ({self.maxsize} records): dropping records, "
                f"{self.dropped} dropped so far"
            )

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

    # --- listener side ---
    def _run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._wake.clear()
                self._idle = True
                if not queue:
                    self._wake.wait(IDLE_WAIT)
                self._idle = False
                continue
            batch: dict[QueuedHandler, list[logging.LogRecord]] = {}
            markers: list[Any] = []
            stop = False
            for _ in range(BATCH_RECORDS):
                try:
                    handler, record = queue.popleft()
                except IndexError:
                    break
                if handler is None:
                    if record is None:
                        stop = True
                    else:
                        markers.append(record)
                    continue
                batch.setdefault(handler, []).append(record)
            for handler, records in batch.items():
                handler.write_batch(records)
            for marker in markers:
                marker.set()
            if stop:
                return

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            return not self._queue
        done = threading.Event()
        self._queue.append((None, done))
        self._wake.set()
        return done.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Drain the queue and stop the listener (process exit, gunicorn worker exit)."""
        self.flush(timeout)
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

_previous_handlers: dict[int, Any] = {}


def _drain_on_signal(signum: int, frame: FrameType | None) -> None:
    """Write everything queued, switch to writing in place, then do what was done before.

    Whatever the server does next (a graceful shutdown that logs more, or dying at once
    from a re-raised signal with no atexit), no record waits in the queue any more.
    """
    writer.synchronous = True
    writer.flush(5.0)
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous in (signal.SIG_DFL, None):
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)  # die of the signal, as the process would have


def drain_on_termination(signals: Sequence[int] = (signal.SIGTERM,)) -> bool:
    """Chain a drain of the log queue in front of each signal's current handler.

    For processes that do not exit through the interpreter's normal shutdown on SIGTERM
    (runserver, management commands, servers that re-raise the signal). Only the main
    thread may set signal handlers; elsewhere this does nothing and returns False.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    for signum in signals:
        current = signal.getsignal(signum)
        if current is _drain_on_signal or current == signal.SIG_IGN:
            continue
        _previous_handlers[signum] = current
        signal.signal(signum, _drain_on_signal)
    return True


def flush_logs(timeout: float = 5.0) -> bool:
    """Block until every record logged so far in this process is written."""
    return writer.flush(timeout)


def shutdown_writer() -> None:
    writer.stop()


def stats() -> dict[str, int]:
    """Counters: records waiting, dropped on a full queue, dropped on write errors."""
    failed = sum(handler.dropped for handler in list(QueuedHandler.instances))
    return {
        "queued": len(writer._queue),
        "dropped_queue_full": writer.dropped,
        "dropped_write_errors": failed,
    }


atexit.register(shutdown_writer)


class QueuedHandler(logging.Handler):
    """Filters run in the caller's thread; formatting and writing in the listener's."""

    instances: "set[QueuedHandler]" = set()  # noqa: UP037

    def __init__(self, level: int | str = logging.NOTSET, queue_size: int | None = None) -> None:
        super().__init__(level)
        self.dropped = 0
        self._failing = False
        self._last_report = 0.0
        if queue_size:
            writer.maxsize = int(queue_size)
        QueuedHandler.instances.add(self)

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock here: the queue is thread-safe and the listener is the only writer.
        if not self.filter(record):
            return False
        writer.submit(self, record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.write_batch([record])

    def flush(self) -> None:
        if writer._thread is not threading.current_thread():
            writer.flush(1.0)

    def close(self) -> None:
        QueuedHandler.instances.discard(self)
        super().close()

    def format_batch(self, records: Sequence[logging.LogRecord]) -> list[str]:
        lines = []
        for record in records:
            try:
                lines.append(self.format(record))
            except Exception:
                lines.append(
                    f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(record.created))},000 "
                    f"ERROR [{record.name}] [unformattable record]"
                )
        return lines

    def write_batch(self, records: Sequence[logging.LogRecord]) -> None:
        raise NotImplementedError

    def report_failure(self, what: str, exc: BaseException, lost: int) -> None:
        """Count the lost records and say so on stderr, at most once a minute, never the data."""
        self.dropped += lost
        self._failing = True
        now = time.monotonic()
        if now - self._last_report >= REPORT_INTERVAL:
            self._last_report = now
            reason = getattr(exc, "strerror", None) or exc.__class__.__name__
            _stderr(
                f"cannot write {what}: {exc.__class__.__name__}: {reason}; "
                f"{self.dropped} records dropped so far; will retry"
            )

    def report_recovery(self, what: str) -> None:
        if self._failing:
            self._failing = False
            self._last_report = 0.0
            _stderr(f"writing to {what} again ({self.dropped} records were dropped)")

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's default prints the record's raw arguments to stderr: never do that.
        exc = sys.exc_info()[1] or RuntimeError("unknown error")
        self.report_failure(self.__class__.__name__, exc, 1)


class _BatchRotatingFile(ConcurrentRotatingFileHandler):
    """concurrent-log-handler, writing a whole batch under one lock acquisition."""

    def write_text(self, text: str) -> None:
        self._do_lock()
        try:
            self._check_stream()
            try:
                if self.shouldRollover(None):
                    self.doRollover()
            except OSError:
                pass  # the library's own choice: keep writing to the current file
            self.do_write(text)
        finally:
            self._do_unlock()


class QueuedFileHandler(QueuedHandler):
    """A rotating log file, safe for several processes, written off the request thread."""

    def __init__(
        self,
        filename: str,
        maxBytes: int = 0,
        backupCount: int = 0,
        encoding: str = "utf-8",
        use_gzip: bool = False,
        level: int | str = logging.NOTSET,
        queue_size: int | None = None,
    ) -> None:
        super().__init__(level, queue_size)
        self.baseFilename = os.path.abspath(filename)
        self.maxBytes = maxBytes
        self.backupCount = backupCount
        self.encoding = encoding
        self.use_gzip = use_gzip
        self._target: _BatchRotatingFile | None = None
        self._target_pid = 0

    def _open_target(self) -> _BatchRotatingFile:
        directory = os.path.dirname(self.baseFilename)
        os.makedirs(directory, exist_ok=True)
        return _BatchRotatingFile(
            self.baseFilename,
            maxBytes=self.maxBytes,
            backupCount=self.backupCount,
            encoding=self.encoding,
            use_gzip=self.use_gzip,
            unicode_error_policy="replace",
        )

    def write_batch(self, records: Sequence[logging.LogRecord]) -> None:
        with self.lock:  # the listener, or any thread once writing in place at shutdown
            self._write_batch(records)

    def _write_batch(self, records: Sequence[logging.LogRecord]) -> None:
        lines = self.format_batch(records)
        try:
            if self._target is None or self._target_pid != os.getpid():
                self._target = self._open_target()
                self._target_pid = os.getpid()
            chunk: list[str] = []
            size = 0
            for line in lines:
                chunk.append(line)
                size += len(line) + 1
                if size >= BATCH_BYTES:
                    self._target.write_text("\n".join(chunk))
                    chunk, size = [], 0
            if chunk:
                self._target.write_text("\n".join(chunk))
        except Exception as exc:
            self.report_failure(self.baseFilename, exc, len(records))
            self._discard_target()
            return
        self.report_recovery(self.baseFilename)

    def _discard_target(self) -> None:
        target, self._target = self._target, None
        if target is not None:
            with contextlib.suppress(Exception):  # already failing; the retry reopens
                target.close()

    def close(self) -> None:
        self._discard_target()
        super().close()

    def __repr__(self) -> str:
        return (
            f"<{self.__class__.__name__} {self.baseFilename} ({logging.getLevelName(self.level)})>"
        )


class QueuedStreamHandler(QueuedHandler):
    """stderr (or another stream), written off the request thread."""

    def __init__(
        self,
        stream: TextIO | None = None,
        level: int | str = logging.NOTSET,
        queue_size: int | None = None,
    ) -> None:
        super().__init__(level, queue_size)
        self.stream = stream

    def write_batch(self, records: Sequence[logging.LogRecord]) -> None:
        stream = self.stream or sys.stderr
        with self.lock:
            self._write_to(stream, records)

    def _write_to(self, stream: TextIO, records: Sequence[logging.LogRecord]) -> None:
        try:
            stream.write("\n".join(self.format_batch(records)) + "\n")
            stream.flush()
        except Exception as exc:
            self.report_failure("the console", exc, len(records))
