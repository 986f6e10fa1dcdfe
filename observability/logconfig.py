"""Build the LOGGING dict once: five files under LOG_BASE_DIR, the seed's loggers and formatters.

    LOGGING = build_logging(base_dir=LOG_BASE_DIR, debug=DEBUG, level=LOG_LEVEL)

| file                      | receives                                          | size x backups |
| billing_api.log           | general records, INFO and up                      | 10 MB x 5      |
| billing_api_debug.log     | everything from DEBUG (only when debug is on)     | 10 MB x 3      |
| billing_api_errors.log    | ERROR and up from every logger, with tracebacks   | 5 MB x 10      |
| billing_api_requests.log  | the request lifecycle lines (billing.api)         | 10 MB x 5      |
| billing_api_security.log  | security events, django.security, common.jwt_auth | 5 MB x 10      |
"""

from __future__ import annotations

import os
from typing import Any

MB = 1024 * 1024
LOG_FILES = {
    # handler name: (file name, max bytes, backups, level, formatter)
    "general_file": ("billing_api.log", 10 * MB, 5, "INFO", "verbose"),
    "debug_file": ("billing_api_debug.log", 10 * MB, 3, "DEBUG", "detailed"),
    "errors_file": ("billing_api_errors.log", 5 * MB, 10, "ERROR", "detailed"),
    "requests_file": ("billing_api_requests.log", 10 * MB, 5, "INFO", "api"),
    "security_file": ("billing_api_security.log", 5 * MB, 10, "INFO", "verbose"),
}
LOG_FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def build_logging(
    *,
    base_dir: str | os.PathLike[str] = "/tmp",
    debug: bool = False,
    level: str = "INFO",
    log_format: str = "text",
    console: bool = True,
    max_bytes: int | None = None,
    backup_count: int | None = None,
    queue_size: int | None = None,
) -> dict[str, Any]:
    """Return a dictConfig dict for the seed's files, loggers and formatters.

    `max_bytes` / `backup_count` override every file's size and backups (tests use tiny
    files). `log_format="json"` writes one JSON object a line to every file.
    """
    level = level.upper()
    if level not in LEVELS:
        msg = f"LOG_LEVEL must be one of {', '.join(LEVELS)}, got {level!r}"
        raise ValueError(msg)
    if log_format not in LOG_FORMATS:
        msg = f"LOG_FORMAT must be 'text' or 'json', got {log_format!r}"
        raise ValueError(msg)
    for name, value, minimum in (
        ("max_bytes", max_bytes, 0),
        ("backup_count", backup_count, 0),
        ("queue_size", queue_size, 1),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < minimum
        ):
            msg = f"build_logging({name}=...) must be an integer >= {minimum}, got {value!r}"
            raise ValueError(msg)
    base_dir = os.fspath(base_dir)
    filters = ["request_context", "redaction"]

    handlers: dict[str, Any] = {}
    for name, (filename, size, backups, file_level, formatter) in LOG_FILES.items():
        if name == "debug_file" and not debug:
            continue
        handlers[name] = {
            "()": "observability.handlers.QueuedFileHandler",
            "filename": os.path.join(base_dir, filename),
            "maxBytes": size if max_bytes is None else max_bytes,
            "backupCount": backups if backup_count is None else backup_count,
            "level": file_level,
            "formatter": "json" if log_format == "json" else formatter,
            "filters": filters,
            "queue_size": queue_size,
        }
    if console:
        handlers["console"] = {
            "()": "observability.handlers.QueuedStreamHandler",
            "level": "DEBUG" if debug else level,
            "formatter": "simple",
            "filters": filters,
        }

    def route(*names: str) -> list[str]:
        chosen = [*names, "errors_file", "console", "debug_file"]
        return [name for name in chosen if name in handlers]

    # Loggers may create DEBUG records only when something will write them.
    logger_level = "DEBUG" if debug else level
    general = route("general_file")
    security = route("security_file")

    def logger(handler_names: list[str], logger_level: str = logger_level) -> dict[str, Any]:
        return {"handlers": handler_names, "level": logger_level, "propagate": False}

    loggers = {
        "django": logger(general),
        "django.request": {"level": logger_level, "propagate": True},
        "django.server": {"level": logger_level, "propagate": True},
        "django.security": logger(security),
        # SQL reaches a file only with DEBUG on (the debug file); errors reach the errors file.
        "django.db.backends": logger(
            [n for n in route() if n != "console"], "DEBUG" if debug else "INFO"
        ),
        "billing": logger(general),
        "billing.views": {"level": logger_level, "propagate": True},
        "billing.models": {"level": logger_level, "propagate": True},
        "billing.events": {"level": logger_level, "propagate": True},
        "billing.performance": {"level": logger_level, "propagate": True},
        "billing.api": logger(route("requests_file")),
        "billing.security": logger(security),
        "common.jwt_auth": logger(security),
        "rest_framework": logger(general),
        "observability": logger(general),
        # The servers' own loggers go through the same filters: gunicorn writes a client's
        # invalid request line into its error log, card numbers included.
        "gunicorn.error": logger(general),
        "gunicorn.access": logger(route()),
        "uvicorn": logger(general),
        "uvicorn.error": logger(general),
        "uvicorn.access": logger(route()),
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_context": {"()": "observability.filters.RequestContextFilter"},
            "redaction": {"()": "observability.filters.RedactionFilter"},
        },
        "formatters": {
            "verbose": {"()": "observability.formatters.VerboseFormatter"},
            "simple": {"()": "observability.formatters.SimpleFormatter"},
            "detailed": {"()": "observability.formatters.DetailedFormatter"},
            "api": {"()": "observability.formatters.ApiFormatter"},
            "json": {"()": "observability.formatters.JsonFormatter"},
        },
        "handlers": handlers,
        "root": {"handlers": general, "level": logger_level},
        "loggers": loggers,
    }
