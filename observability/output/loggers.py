"""The loggers the layer writes to, named by settings (APP_LOGGER, REQUEST_LOGGER ...), and
the levels the settings name (`level_of`).

`api_logger` and its siblings are the seed's pre-configured loggers. Each follows its
setting, also when a test overrides it: it looks the logger up at each use (a dict
lookup; `logging.getLogger` would take logging's module lock every time).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from observability.conf import obs_settings, on_reload

_loggers: dict[str, logging.Logger] = {}


def get_logger(setting: str) -> logging.Logger:
    """The logger named by an OBSERVABILITY setting, e.g. get_logger("REQUEST_LOGGER")."""
    name = getattr(obs_settings, setting)
    logger = _loggers.get(name)
    if logger is None:
        logger = _loggers[name] = logging.getLogger(name)
    return logger


@on_reload
def _forget_loggers() -> None:
    _loggers.clear()


@functools.lru_cache(maxsize=32)
def level_of(name: str | None) -> int | None:
    """A level name from the settings as a number; None stays None (no line)."""
    if name is None:
        return None
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO


class SettingLogger:
    """Stands for the logger a setting names: every attribute is that logger's."""

    __slots__ = ("_setting",)

    def __init__(self, setting: str) -> None:
        self._setting = setting

    def __getattr__(self, name: str) -> Any:
        return getattr(get_logger(self._setting), name)

    def __repr__(self) -> str:
        return f"<SettingLogger {self._setting}: {get_logger(self._setting).name}>"


app_logger = SettingLogger("APP_LOGGER")
billing_logger = app_logger  # the seed's name for the app's logger
api_logger = SettingLogger("REQUEST_LOGGER")
security_logger = SettingLogger("SECURITY_LOGGER")
performance_logger = SettingLogger("PERFORMANCE_LOGGER")
events_logger = SettingLogger("EVENTS_LOGGER")
