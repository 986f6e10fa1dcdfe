"""StructuredLogger: the seed's logger whose calls take a dict of fields."""

from __future__ import annotations

import logging
from typing import Any

from observability.records import safe_extra

Fields = dict[str, Any] | None


class StructuredLogger:
    """A logger whose calls take a dict of fields: `logger.info("Refund done", {"id": 1})`."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)
        self.name = name

    def _log(self, level: int, message: str, fields: dict[str, Any] | None, exc_info: Any) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(
                level, message, extra=safe_extra(fields), exc_info=exc_info, stacklevel=3
            )

    def debug(
        self, message: str, fields: dict[str, Any] | None = None, exc_info: Any = False
    ) -> None:
        self._log(logging.DEBUG, message, fields, exc_info)

    def info(
        self, message: str, fields: dict[str, Any] | None = None, exc_info: Any = False
    ) -> None:
        self._log(logging.INFO, message, fields, exc_info)

    def warning(
        self, message: str, fields: dict[str, Any] | None = None, exc_info: Any = False
    ) -> None:
        self._log(logging.WARNING, message, fields, exc_info)

    def error(
        self, message: str, fields: dict[str, Any] | None = None, exc_info: Any = False
    ) -> None:
        self._log(logging.ERROR, message, fields, exc_info)

    def critical(
        self, message: str, fields: dict[str, Any] | None = None, exc_info: Any = False
    ) -> None:
        self._log(logging.CRITICAL, message, fields, exc_info)
