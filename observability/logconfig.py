"""Build the LOGGING dict once: five files under LOG_BASE_DIR, the loggers and formatters.

    LOGGING = build_logging(base_dir=LOG_BASE_DIR, debug=DEBUG, observability=OBSERVABILITY)

File and logger names come from the OBSERVABILITY settings (LOG_FILES, *_LOGGER). Their
defaults are neutral (`app.log`, logger `app.requests` ...); this project sets the seed's
(config/logs.py):

| file (this project)       | receives                                          | size x backups |
| billing_api.log           | general records, INFO and up                      | 10 MB x 5      |
| billing_api_debug.log     | everything from DEBUG (only when debug is on)     | 10 MB x 3      |
| billing_api_errors.log    | ERROR and up from every logger, with tracebacks   | 5 MB x 10      |
| billing_api_requests.log  | the request lifecycle lines (REQUEST_LOGGER)      | 10 MB x 5      |
| billing_api_security.log  | security events, django.security, AUTH_LOGGER     | 5 MB x 10      |
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from observability.conf import LEVEL_NAMES, resolve

MB = 1024 * 1024
FILE_HANDLERS = {
    # tag (a LOG_FILES key): (max bytes, backups, level, formatter), the seed's
    "general": (10 * MB, 5, "INFO", "verbose"),
    "debug": (10 * MB, 3, "DEBUG", "detailed"),
    "errors": (5 * MB, 10, "ERROR", "detailed"),
    "requests": (10 * MB, 5, "INFO", "api"),
    "security": (5 * MB, 10, "INFO", "verbose"),
}
LOG_FORMATS = ("text", "json", "ecs")


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
    observability: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a dictConfig dict for the seed's files, loggers and formatters.

    `max_bytes` / `backup_count` override every file's size and backups (tests use tiny
    files). `log_format="json"` writes one JSON object a line to every file.
    `observability` is the project's OBSERVABILITY dict: file and logger names.
    """
    names = observability or {}
    level = level.upper()
    if level not in LEVEL_NAMES:
        msg = f"LOG_LEVEL must be one of {', '.join(LEVEL_NAMES)}, got {level!r}"
        raise ValueError(msg)
    if log_format not in LOG_FORMATS:
        msg = f"LOG_FORMAT must be 'text', 'json' or 'ecs', got {log_format!r}"
        raise ValueError(msg)
    if log_format == "ecs" and importlib.util.find_spec("ecs_logging") is None:
        msg = "LOG_FORMAT 'ecs' needs the ecs-logging package: pip install 'ecs-logging>=2.1'"
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
    # Flood control first (a summarised record costs no masking); the security file's
    # guards whatever reaches it, the others the records of guarded loggers.
    filters = ["flood", "request_context", "redaction"]

    files = resolve(names, "LOG_FILES")
    handlers: dict[str, Any] = {}
    for tag, (size, backups, file_level, formatter) in FILE_HANDLERS.items():
        if tag == "debug" and not debug:
            continue
        handlers[f"{tag}_file"] = {
            "()": "observability.handlers.QueuedFileHandler",
            "filename": os.path.join(base_dir, files[tag]),
            "maxBytes": size if max_bytes is None else max_bytes,
            "backupCount": backups if backup_count is None else backup_count,
            "level": file_level,
            "formatter": formatter if log_format == "text" else log_format,
            "filters": ["flood_security", *filters[1:]] if tag == "security" else filters,
            "queue_size": queue_size,
            "file_mode": resolve(names, "LOG_FILE_MODE"),
            "dir_mode": resolve(names, "LOG_DIR_MODE"),
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

    app = resolve(names, "APP_LOGGER")

    def propagating() -> dict[str, Any]:  # written by its parent's (or the root's) handlers
        return {"level": logger_level, "propagate": True}

    loggers = {
        "django": logger(general),
        "django.request": propagating(),
        "django.server": propagating(),
        "django.security": logger(security),
        # SQL reaches a file only with DEBUG on (the debug file); errors reach the errors file.
        "django.db.backends": logger(
            [n for n in route() if n != "console"], "DEBUG" if debug else "INFO"
        ),
        app: logger(general),
        f"{app}.models": propagating(),
        # Named by settings; they write where the app logger writes unless set otherwise.
        resolve(names, "VIEWS_LOGGER"): propagating(),
        resolve(names, "EVENTS_LOGGER"): propagating(),
        resolve(names, "PERFORMANCE_LOGGER"): propagating(),
        resolve(names, "SPAN_LOGGER"): propagating(),
        resolve(names, "TASK_LOGGER"): propagating(),  # task lifecycle lines
        "celery": logger(general),  # a worker's own records: the same files and filters
        # Celery's own task lines carry a task's arguments (its `data`): the TASK_LOGGER's
        # lifecycle lines (observability.background.celery) stand for them, without the arguments.
        "celery.app.trace": {"level": "CRITICAL", "propagate": True},
        "celery.worker.strategy": {"level": "WARNING", "propagate": True},  # "received", args
        resolve(names, "REQUEST_LOGGER"): logger(route("requests_file")),
        resolve(names, "SECURITY_LOGGER"): logger(security),
        resolve(names, "AUTH_LOGGER"): logger(security),
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
            "flood": {"()": "observability.filters.FloodFilter"},
            "flood_security": {"()": "observability.filters.FloodFilter", "security": True},
            "request_context": {"()": "observability.filters.RequestContextFilter"},
            "redaction": {"()": "observability.filters.RedactionFilter"},
        },
        "formatters": {
            "verbose": {"()": "observability.formatters.VerboseFormatter"},
            "simple": {"()": "observability.formatters.SimpleFormatter"},
            "detailed": {"()": "observability.formatters.DetailedFormatter"},
            "api": {"()": "observability.formatters.ApiFormatter"},
            "json": {"()": "observability.json_formatter.JsonFormatter"},
            **(
                {"ecs": {"()": "observability.ecs_formatter.EcsFormatter"}}
                if log_format == "ecs"
                else {}
            ),
        },
        "handlers": handlers,
        "root": {"handlers": general, "level": logger_level},
        "loggers": loggers,
    }
