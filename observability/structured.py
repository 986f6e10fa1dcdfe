"""StructuredLogger: the seed's logger whose calls take a dict of fields."""

from __future__ import annotations

import functools
import logging
from typing import Any, Protocol

from observability.output.records import safe_extra

Fields = dict[str, Any] | None


class _LevelMethod(Protocol):
    def __call__(self, message: str, fields: Fields = None, exc_info: Any = False) -> None: ...


class _At:
    """A logging method at one level: `logger.info(message, fields=None, exc_info=False)`."""

    def __init__(self, level: int) -> None:
        self.level = level

    def __get__(self, logger: StructuredLogger, owner: type | None = None) -> _LevelMethod:
        return functools.partial(logger._log_at, self.level)


class StructuredLogger:
    """A logger whose calls take a dict of fields: `logger.info("Refund done", {"id": 1})`."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)
        self.name = name

    def _log_at(
        self, level: int, message: str, fields: Fields = None, exc_info: Any = False
    ) -> None:
        if self.logger.isEnabledFor(level):
            # stacklevel 2: the record names the caller of .info(), not this method
            self.logger.log(
                level, message, extra=safe_extra(fields), exc_info=exc_info, stacklevel=2
            )

    debug = _At(logging.DEBUG)
    info = _At(logging.INFO)
    warning = _At(logging.WARNING)
    error = _At(logging.ERROR)
    critical = _At(logging.CRITICAL)
