"""Rotating files shared by several processes, written a batch at a time.

concurrent-log-handler locks the file across processes, rotates it, and writes one
record per `emit()`. Given one record whose message is a whole batch of lines, its public
`emit()` takes the lock once, rotates if the batch would overflow the file, and writes
the batch in one call. Failures are raised to the caller (which counts and reports
them) instead of going to the library's `handleError`.
"""

from __future__ import annotations

import logging

from concurrent_log_handler import ConcurrentRotatingFileHandler


class BatchRotatingFile(ConcurrentRotatingFileHandler):
    """A multi-process rotating file that writes already formatted lines in one go."""

    def __init__(
        self,
        filename: str,
        *,
        max_bytes: int,
        backup_count: int,
        encoding: str = "utf-8",
        use_gzip: bool = False,
    ) -> None:
        super().__init__(
            filename,
            maxBytes=max_bytes,
            backupCount=backup_count,
            encoding=encoding,
            use_gzip=use_gzip,
            unicode_error_policy="replace",
        )
        self.setFormatter(logging.Formatter("%(message)s"))

    def write_lines(self, text: str) -> None:
        """Append `text` (lines joined by newlines) and a final newline, rotating first."""
        self.emit(logging.makeLogRecord({"msg": text}))

    def handleError(self, record: logging.LogRecord) -> None:
        raise  # called inside emit()'s except block: the writer counts and reports it
