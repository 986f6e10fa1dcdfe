"""Logging handlers that never block: filters in the caller's thread, writing in the writer's.

`QueuedFileHandler` (a rotating file shared by several processes) and
`QueuedStreamHandler` (stderr) hand their records to `observability.output.writer`, which calls
their `write_batch()` from its listener thread. A file that cannot be written costs its
records (counted, reported once a minute on stderr without their contents) until the
fault clears, then writing resumes by itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

from observability.filters import FloodFilter, RedactionFilter, RequestContextFilter
from observability.output.rotation import BatchRotatingFile
from observability.output.writer import REPORT_INTERVAL, report, writer

#: What the writer hands a handler: a record, or a line the fast path formatted already.
Item = logging.LogRecord | str

BATCH_BYTES = 256 * 1024  # the most written in one call
#: The filters a handler that takes Lines may have: ours, with flood control first or not
#: (FloodFilter passes every REQUEST_LOGGER record: lifecycle lines are never summarised).
_OUR_FILTER_LISTS = (
    [RequestContextFilter, RedactionFilter],
    [FloodFilter, RequestContextFilter, RedactionFilter],
)


class QueuedHandler(logging.Handler):
    """Filters run in the caller's thread; formatting and writing in the listener's."""

    def __init__(self, level: int | str = logging.NOTSET, queue_size: int | None = None) -> None:
        super().__init__(level)
        self.dropped = 0
        self.written = 0  # records this process wrote (log_records_written_total)
        self._failing = False
        self._last_report = 0.0
        self._write_lock = threading.RLock()
        if queue_size:
            writer.maxsize = int(queue_size)
        writer.targets.add(self)

    @property
    def takes_lines(self) -> bool:
        """Whether the lifecycle may hand it Lines instead of records (observability.http.emit):
        our filters, a formatter that renders Lines, and our own `handle`."""
        return (
            getattr(self.formatter, "takes_lines", False)
            and [type(f) for f in self.filters] in _OUR_FILTER_LISTS
            and type(self).handle is QueuedHandler.handle
        )

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock here: the queue is thread-safe and the listener is the only writer.
        if not self.filter(record):
            return False
        writer.submit(self, record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.write_batch([record])

    def flush(self) -> None:
        if not writer.is_listener():
            writer.flush(1.0)

    def close(self) -> None:
        writer.targets.discard(self)
        super().close()

    def format_batch(self, records: Sequence[Item]) -> list[str]:
        """Each record formatted; a line prepared without a record (the fast path) too."""
        return [record if type(record) is str else self._format_one(record) for record in records]

    def _format_one(self, record: Item) -> str:
        if isinstance(record, str):
            return record
        try:
            return self.format(record)
        except Exception:
            return (
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(record.created))},000 "
                f"ERROR [{record.name}] [unformattable record]"
            )

    def write_batch(self, records: Sequence[Item]) -> None:
        raise NotImplementedError

    def report_failure(self, what: str, exc: BaseException, lost: int) -> None:
        """Count the lost records and say so on stderr, at most once a minute, never the data."""
        self.dropped += lost
        self._failing = True
        now = time.monotonic()
        if now - self._last_report >= REPORT_INTERVAL:
            self._last_report = now
            reason = getattr(exc, "strerror", None) or exc.__class__.__name__
            report(
                f"cannot write {what}: {exc.__class__.__name__}: {reason}; "
                f"{self.dropped} records dropped so far; will retry"
            )

    def report_recovery(self, what: str) -> None:
        if self._failing:
            self._failing = False
            self._last_report = 0.0
            report(f"writing to {what} again ({self.dropped} records were dropped)")

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's default prints the record's raw arguments to stderr: never do that.
        exc = sys.exc_info()[1] or RuntimeError("unknown error")
        self.report_failure(self.__class__.__name__, exc, 1)


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
        self._target: BatchRotatingFile | None = None
        self._target_pid = 0

    def _open_target(self) -> BatchRotatingFile:
        directory = os.path.dirname(self.baseFilename)
        os.makedirs(directory, exist_ok=True)
        return BatchRotatingFile(
            self.baseFilename,
            max_bytes=self.maxBytes,
            backup_count=self.backupCount,
            encoding=self.encoding,
            use_gzip=self.use_gzip,
        )

    def write_batch(self, records: Sequence[Item]) -> None:
        with self._write_lock:  # the listener, or any thread writing in place at shutdown
            self._write_batch(records)

    def _write_batch(self, records: Sequence[Item]) -> None:
        lines = self.format_batch(records)
        try:
            if self._target is None or self._target_pid != os.getpid():
                self._target = self._open_target()
                self._target_pid = os.getpid()
            text = "\n".join(lines)
            if len(text) < BATCH_BYTES:  # the usual batch: one write
                self._target.write_lines(text)
            else:
                self._write_chunks(self._target, lines)
        except Exception as exc:
            self.report_failure(self.baseFilename, exc, len(records))
            self._discard_target()
            return
        self.written += len(records)
        self.report_recovery(self.baseFilename)

    @staticmethod
    def _write_chunks(target: BatchRotatingFile, lines: list[str]) -> None:
        """A large batch in writes of about BATCH_BYTES each."""
        chunk: list[str] = []
        size = 0
        for line in lines:
            chunk.append(line)
            size += len(line) + 1
            if size >= BATCH_BYTES:
                target.write_lines("\n".join(chunk))
                chunk, size = [], 0
        if chunk:
            target.write_lines("\n".join(chunk))

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

    def write_batch(self, records: Sequence[Item]) -> None:
        stream = self.stream or sys.stderr
        with self._write_lock:
            self._write_to(stream, records)

    def _write_to(self, stream: TextIO, records: Sequence[Item]) -> None:
        try:
            stream.write("\n".join(self.format_batch(records)) + "\n")
            stream.flush()
        except Exception as exc:
            self.report_failure("the console", exc, len(records))
            return
        self.written += len(records)
