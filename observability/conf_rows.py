"""The OBSERVABILITY settings, one row each: name, default, check, the sentence a wrong
value gets, and how a valid value is read (`observability.conf` serves them). The rows of
the layer at volume are in `conf_volume_rows`.

Every key is declared here once; the README's table is tested against these rows
(tests/observability/test_setting_rows.py).
"""

from __future__ import annotations

import re
from typing import Any

from observability.conf_checks import (
    DEFAULT_LOG_FILES,
    DEFAULT_REDACT_KEYS,
    RATE,
    Row,
    dir_mode,
    file_mode,
    is_bool,
    is_header,
    is_logger_name,
    is_number,
    is_str_seq,
    optional_header,
    optional_name,
    parse_address,
    trust,
    valid_log_files,
    valid_proxies,
)
from observability.conf_volume_rows import LEVEL_NAMES, VOLUME_ROWS

_BOOL = "must be True or False"
_TRUST = "must be True, False or 'proxies' (only from TRUSTED_PROXIES)"
_OPTIONAL_HEADER = "must be an HTTP header name, or None for no such response header"
_LOGGER = "must be a logger name such as 'myapp.api'"
_LEVEL = f"must be one of {', '.join(map(repr, LEVEL_NAMES))}"


def _log_files(value: Any) -> dict[str, str]:
    return {**DEFAULT_LOG_FILES, **value}


ROWS: tuple[Row, ...] = (
    Row("ENABLED", True, is_bool, _BOOL),
    Row(
        "REQUEST_ID_HEADER",
        "X-Request-ID",
        is_header,
        "must be an HTTP header name such as 'X-Request-ID'",
    ),
    Row("TRUST_INCOMING_REQUEST_ID", True, trust, _TRUST),
    Row("RESPONSE_HEADER", "X-Request-ID", optional_header, _OPTIONAL_HEADER),
    Row("TRUST_INCOMING_TRACEPARENT", True, trust, _TRUST),
    Row("TRACE_RESPONSE_HEADER", "traceresponse", optional_header, _OPTIONAL_HEADER),
    # Neutral logger names; a project sets its own (this one the seed's `billing.*`, in
    # config/logs.py). build_logging() configures whatever names are set here.
    Row("APP_LOGGER", "app", is_logger_name, _LOGGER),
    Row("REQUEST_LOGGER", "app.requests", is_logger_name, _LOGGER),
    Row("SECURITY_LOGGER", "app.security", is_logger_name, _LOGGER),
    Row("EVENTS_LOGGER", "app.events", is_logger_name, _LOGGER),
    Row("PERFORMANCE_LOGGER", "app.performance", is_logger_name, _LOGGER),
    Row("VIEWS_LOGGER", "app.views", is_logger_name, _LOGGER),
    Row("AUTH_LOGGER", "app.auth", is_logger_name, _LOGGER),
    Row("TASK_LOGGER", "app.tasks", is_logger_name, _LOGGER),
    Row(
        "LOG_FILES",
        DEFAULT_LOG_FILES,
        valid_log_files,
        f"must map some of {', '.join(DEFAULT_LOG_FILES)} to file names (no directories)",
        read=_log_files,
    ),
    Row(
        "SLOW_REQUEST_THRESHOLD",
        1.0,
        lambda v: is_number(v) and v >= 0,
        "must be a number of seconds >= 0",
    ),
    Row(
        "EXCLUDE_PATHS",
        ("/health/",),
        lambda v: is_str_seq(v) and all(p.startswith("/") for p in v),
        "must be a list of path prefixes starting with '/'",
        read=tuple,
    ),
    Row("LOG_QUERY_STRING", True, is_bool, _BOOL),
    Row("LOG_USER_AGENT", True, is_bool, _BOOL),
    Row(
        "CLIENT_ERROR_LEVEL",
        "INFO",
        lambda v: v in {"DEBUG", "INFO", "WARNING"},
        "must be 'DEBUG', 'INFO' or 'WARNING'",
    ),
    # Trace viewer: event field -> admin URL name; None: every model the admin has, as <model>_id
    Row(
        "VIEWER_ADMIN_LINKS",
        None,
        lambda v: v is None or (isinstance(v, dict) and is_str_seq([*v, *v.values()])),
        "must be None or a dict of field names to admin URL names",
    ),
    Row(
        "VIEWER_RATE",
        "120/min",
        lambda v: v is None or (isinstance(v, str) and RATE.fullmatch(v) is not None),
        "must be None or a rate such as 120/min (a whole number >= 1, then /s, /min, /hour "
        "or /day): pages of the trace viewer each staff member may open",
    ),
    Row(
        "TRUSTED_PROXIES",
        0,
        valid_proxies,
        "must be a number of proxies >= 0 or a list of proxy addresses/networks",
    ),
    Row("REDACT", True, is_bool, _BOOL),
    Row(
        "REDACT_KEYS",
        DEFAULT_REDACT_KEYS,
        lambda v: is_str_seq(v) and all(v),
        "must be a list of non-empty key names",
    ),
    *VOLUME_ROWS,
    # --- Several hosts: a central root of host folders that logtrace and the viewer read
    # instead of LOG_BASE_DIR (README, "Several hosts"); None: this host's own directory.
    Row(
        "LOG_ROOT",
        None,
        lambda v: v is None or (isinstance(v, str) and v.startswith("/") and "\x00" not in v),
        "must be None or an absolute path: the central root holding one folder per host",
    ),
    # --- Log files are private (PCI scope): created with these modes (README, "Log files")
    Row(
        "LOG_FILE_MODE",
        0o640,
        file_mode,
        "must be a file mode such as 0o640: the owner reads and writes, nobody executes",
    ),
    Row(
        "LOG_DIR_MODE",
        0o750,
        dir_mode,
        "must be a directory mode such as 0o750: the owner reads, writes and enters",
    ),
    # --- Who writes the lines: ECS's service.name / .version / .environment (None: service.name
    # is OpenTelemetry's, else OTEL_SERVICE_NAME; the others left out)
    *(
        Row(name, None, optional_name, "must be None or a printable text of 1 to 256 characters")
        for name in ("SERVICE_NAME", "SERVICE_VERSION", "SERVICE_ENVIRONMENT")
    ),
    # --- Inside a request: spans, database queries (README, "Inside a request")
    Row("SPAN_LOGGER", "app.spans", is_logger_name, _LOGGER),
    Row("SPAN_LEVEL", "INFO", lambda v: v in LEVEL_NAMES, _LEVEL),
    Row("DB_QUERIES", True, is_bool, _BOOL),
    Row(
        "DB_QUERY_LEVEL",
        "DEBUG",
        lambda v: v is None or v in LEVEL_NAMES,
        "must be a level name such as 'DEBUG', or None for no record per query",
    ),
    Row(
        "REPEATED_QUERY_COUNT",
        10,
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 2,
        "must be a number of runs of one query in one request >= 2",
    ),
    Row(
        "REPEATED_QUERY_TIME",
        0.0,
        lambda v: is_number(v) and v >= 0,
        "must be a number of seconds >= 0 (the repeated query's total time)",
    ),
    Row(
        "SLOW_QUERY_THRESHOLD",
        0.5,
        lambda v: v is None or (is_number(v) and v > 0),
        "must be a number of seconds > 0, or None for no slow query warning",
    ),
    # Where the trace viewer is served, for links to a request (Sentry's events carry one).
    Row(
        "VIEWER_URL",
        None,
        lambda v: v is None or (isinstance(v, str) and bool(re.fullmatch(r"https?://\S+", v))),
        "must be None or the trace viewer's URL, such as "
        "'https://billing.example.com/ops/requests/'",
    ),
    # --- Background tasks: Celery's signals carry the request's story (observability.background)
    Row("CELERY", False, is_bool, _BOOL),
    # Where a Celery worker's main process serves its /metrics (observability.background.
    # worker_metrics); None: nowhere.
    Row(
        "CELERY_METRICS_ADDRESS",
        None,
        lambda v: v is None or parse_address(v) is not None,
        "must be None or an address host:port where the Celery worker serves /metrics, such "
        "as '127.0.0.1:9808' (port 1 to 65535; IPv6 as '[::1]:9808')",
    ),
)

BY_NAME: dict[str, Row] = {row.name: row for row in ROWS}
DEFAULTS: dict[str, Any] = {row.name: row.default for row in ROWS}
