"""python manage.py test_logging [--level LEVEL]: prove every logger reaches its files."""

from __future__ import annotations

import functools
import logging
import os
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from observability import (
    StructuredLogger,
    flush_logs,
    log_event,
    log_performance_metric,
    log_security_event,
    request_context,
)
from observability.conf import LEVEL_NAMES
from observability.handlers import QueuedFileHandler
from observability.output.loggers import get_logger

TAIL_BYTES = 4 * 1024 * 1024


def file_handlers(logger: logging.Logger, level: int) -> list[QueuedFileHandler]:
    """The file handlers a record of `level` from `logger` reaches (following propagation)."""
    if not logger.isEnabledFor(level):
        return []
    found = []
    current: logging.Logger | None = logger
    while current is not None:
        found += [
            h for h in current.handlers if isinstance(h, QueuedFileHandler) and level >= h.level
        ]
        current = current.parent if current.propagate else None
    return found


def tail(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - TAIL_BYTES))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


class Command(BaseCommand):
    help = (
        "Send a test record through every configured logger and each logging helper, "
        "then check that every expected log file exists and received its records."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--level",
            default="INFO",
            type=str.upper,
            choices=LEVEL_NAMES,
            help="Level of the test records sent through every logger (default INFO).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        level = logging.getLevelName(options["level"])
        run = uuid.uuid4().hex[:12]
        expected: dict[str, set[str]] = defaultdict(set)  # file -> markers

        def send(
            logger: logging.Logger, marker: str, record_level: int, emit: Callable[[], None]
        ) -> None:
            for handler in file_handlers(logger, record_level):
                expected[handler.baseFilename].add(marker)
            emit()

        names = sorted(getattr(settings, "LOGGING", {}).get("loggers", {}))
        with request_context(request_id=f"test-logging-{run}"):
            for name in ["root", *names]:
                logger = logging.getLogger() if name == "root" else logging.getLogger(name)
                marker = f"test_logging:{run}:{name}"
                send(logger, marker, level, functools.partial(logger.log, level, "%s", marker))
            app = get_logger("APP_LOGGER").name
            helpers: tuple[tuple[str, int, str, Callable[[str], None]], ...] = (
                (
                    "EVENTS_LOGGER",
                    logging.INFO,
                    "billing_event",
                    lambda m: log_event(event_type="test_event", details={"marker": m}),
                ),
                (
                    "SECURITY_LOGGER",
                    logging.CRITICAL,
                    "security_event",
                    lambda m: log_security_event(
                        event_type="test_security_event", severity="critical", details={"marker": m}
                    ),
                ),
                (
                    "PERFORMANCE_LOGGER",
                    logging.INFO,
                    "performance_metric",
                    lambda m: log_performance_metric(
                        metric_name="test_metric", value=0.001, details={"marker": m}
                    ),
                ),
                (
                    "APP_LOGGER",
                    level,
                    "structured_logger",
                    lambda m: getattr(StructuredLogger(app), options["level"].lower())(
                        "Structured test", {"marker": m}
                    ),
                ),
            )
            for setting, record_level, label, emit in helpers:
                marker = f"test_logging:{run}:{label}"
                send(
                    get_logger(setting),
                    marker,
                    record_level,
                    functools.partial(emit, marker),
                )
        flush_logs(10)

        failures = 0
        self.stdout.write(f"{'file':<40} {'expected':>8} {'found':>6}  result")
        for path in sorted(expected):
            markers = expected[path]
            if Path(path).exists():
                text = tail(path)
                found = sum(marker in text for marker in markers)
            else:
                found = 0
            ok = found == len(markers)
            failures += not ok
            status = "ok" if ok else ("MISSING FILE" if not Path(path).exists() else "MISSING")
            self.stdout.write(f"{Path(path).name:<40} {len(markers):>8} {found:>6}  {status}")
        if failures:
            msg = f"{failures} log file(s) did not receive their test records (see the table)"
            raise CommandError(msg)
        self.stdout.write(
            self.style.SUCCESS(f"All {len(expected)} log files received their records.")
        )
