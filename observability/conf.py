"""The OBSERVABILITY settings: one object that reads them, validation, reload on override_settings.

Read a flag as `obs_settings.SLOW_REQUEST_THRESHOLD`; the user's dict wins over the
defaults. Each key is one row of `observability.conf_rows` (default, check, message, how a
value is read). Modelled on DRF's `api_settings`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from observability.conf_checks import DEFAULT_LOG_FILES, MIN_TOKEN_LENGTH, is_str_seq
from observability.conf_rows import (
    BY_NAME,
    DEFAULT_REDACT_KEYS,
    DEFAULTS,
    LEVEL_NAMES,
    LINE_LEVELS,
)

__all__ = [
    "DEFAULTS",
    "DEFAULT_LOG_FILES",
    "DEFAULT_REDACT_KEYS",
    "LEVEL_NAMES",
    "LINE_LEVELS",
    "MIN_TOKEN_LENGTH",
    "obs_settings",
    "on_reload",
    "resolve",
    "validate",
]


def _shown(value: Any, secret: bool) -> str:
    """How a refused value appears in the message: a secret never does."""
    if not secret:
        return repr(value)
    if isinstance(value, str):
        return f"a string of {len(value)} characters (not shown)"
    return f"a {type(value).__name__} (not shown)"


def validate(user_settings: Any) -> list[str]:
    """Return one precise sentence per problem in the user's OBSERVABILITY dict."""
    if not isinstance(user_settings, dict):
        return [f"OBSERVABILITY must be a dict, got {type(user_settings).__name__}"]
    problems = []
    for key, value in user_settings.items():
        if key not in DEFAULTS:
            known = ", ".join(sorted(DEFAULTS))
            problems.append(f"OBSERVABILITY[{key!r}] is not a known setting (known: {known})")
            continue
        row = BY_NAME[key]
        if not row.check(value):
            shown = _shown(value, row.secret)
            problems.append(f"OBSERVABILITY[{key!r}] {row.message}, got {shown}")
    request_logger = user_settings.get("REQUEST_LOGGER", DEFAULTS["REQUEST_LOGGER"])
    flood_loggers = user_settings.get("FLOOD_LOGGERS", ())
    if is_str_seq(flood_loggers) and request_logger in flood_loggers:
        problems.append(
            f"OBSERVABILITY['FLOOD_LOGGERS'] must not name the REQUEST_LOGGER "
            f"({request_logger!r}): lifecycle lines are sampled (SAMPLE_RATE), never summarised"
        )
    for key in ("TRUST_INCOMING_REQUEST_ID", "TRUST_INCOMING_TRACEPARENT"):
        if user_settings.get(key) == "proxies" and not user_settings.get("TRUSTED_PROXIES"):
            problems.append(
                f"OBSERVABILITY[{key!r}] is 'proxies' but OBSERVABILITY['TRUSTED_PROXIES'] "
                "names no proxy: nothing incoming would ever be kept"
            )
    return problems


def resolve(user_settings: dict[str, Any], name: str) -> Any:
    """One setting's value from a user's OBSERVABILITY dict, defaults filled in."""
    row = BY_NAME[name]
    value = user_settings.get(name, row.default)
    return value if row.read is None else row.read(value)


class ObservabilitySettings:
    """Attribute access to OBSERVABILITY with defaults; values are cached until reload()."""

    def __init__(self) -> None:
        self._cached: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "OBSERVABILITY", {})
        return value if isinstance(value, dict) else {}

    def check(self) -> None:
        problems = validate(getattr(settings, "OBSERVABILITY", {}))
        if problems:
            raise ImproperlyConfigured("; ".join(problems))

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            msg = f"Unknown observability setting {name!r}"
            raise AttributeError(msg)
        value = resolve(self.user_settings, name)
        self._cached[name] = value
        setattr(self, name, value)
        return value

    def reload(self) -> None:
        self.check()
        for name in self._cached:
            delattr(self, name)
        self._cached.clear()
        for listener in _reload_listeners:
            listener()


obs_settings = ObservabilitySettings()
_reload_listeners: list[Callable[[], None]] = []


def on_reload(listener: Callable[[], None]) -> Callable[[], None]:
    """Register a function to run when OBSERVABILITY changes (derived caches)."""
    _reload_listeners.append(listener)
    return listener


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "OBSERVABILITY":
        obs_settings.reload()


setting_changed.connect(_reload)
