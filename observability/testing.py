"""Helpers for testing code that logs through observability, like `structlog.testing`.

    from observability.testing import capture_records, reset_context, flush_logs

    def test_refund_writes_an_event():
        with capture_records() as records:
            refund_create(payment=payment, amount=None)
        event = next(r for r in records if r.fields.get("event_type") == "refund_created")
        assert event.fields["payment_id"] == payment.id

Records are captured as a user's handler would receive them: after the context and
redaction filters, so they carry request_id, user_id ... and no secret.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from observability.filters import RedactionFilter, RequestContextFilter
from observability.guard.flood import guard
from observability.output.records import DETAILS_ATTR, extra_keys
from observability.output.writer import flush_logs, writer
from observability.tracing.context import CONTEXT_FIELDS, reset

__all__ = [
    "CapturedRecord",
    "capture_records",
    "drain_logs",
    "flush_logs",
    "reset_context",
    "reset_flood_control",
]


@dataclass
class CapturedRecord:
    """One record: its level, logger, message (arguments merged), fields and traceback.

    `fields` holds the context, the record's own fields and its details (a detail whose
    name is taken is `details.<name>`, as text lines write it); `details` the details alone.
    """

    level: str
    logger: str
    message: str
    fields: dict[str, Any] = field(default_factory=dict)
    traceback: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class _Capture(logging.Handler):
    def __init__(self, records: list[CapturedRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records
        self.addFilter(RequestContextFilter())
        self.addFilter(RedactionFilter())

    def emit(self, record: logging.LogRecord) -> None:
        attrs = record.__dict__
        fields = {key: attrs[key] for key in CONTEXT_FIELDS if key in attrs}
        fields.update((key, attrs[key]) for key in extra_keys(record))
        details = attrs.get(DETAILS_ATTR)
        details = dict(details) if isinstance(details, dict) else {}
        for key, value in details.items():
            fields[f"details.{key}" if key in fields else key] = value
        self.records.append(
            CapturedRecord(
                record.levelname,
                record.name,
                record.getMessage(),
                fields,
                record.exc_text,
                details,
            )
        )


@contextmanager
def capture_records(*loggers: str) -> Iterator[list[CapturedRecord]]:
    """Capture every record of the named loggers (default: every logger) in a block."""
    records: list[CapturedRecord] = []
    handler = _Capture(records)
    if loggers:
        targets = [logging.getLogger(name) for name in loggers]
    else:  # the root, and every logger that does not propagate to it
        targets = [logging.getLogger()] + [
            logger
            for logger in list(logging.root.manager.loggerDict.values())
            if isinstance(logger, logging.Logger) and not logger.propagate
        ]
    for logger in targets:
        logger.addHandler(handler)
    try:
        yield records
    finally:
        for logger in targets:
            logger.removeHandler(handler)


def reset_context() -> None:
    """Forget the current request context (an autouse fixture's job between tests)."""
    reset()


def reset_flood_control() -> None:
    """Forget flood-control counts, so one test's repeated events never mute the next's."""
    guard.forget()


def drain_logs(timeout: float = 5.0) -> bool:
    """What SIGTERM does: write pending flood summaries and held started lines, then flush."""
    return writer.drain(timeout)
