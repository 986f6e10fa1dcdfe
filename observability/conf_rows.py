"""The OBSERVABILITY settings, one row each: name, default, check, the sentence a wrong
value gets, and how a valid value is read (`observability.conf` serves them).

Every key is declared here once; the README's table is tested against these rows
(tests/observability/test_setting_rows.py).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from observability.conf_checks import (
    DEFAULT_LOG_FILES,
    MIN_TOKEN_LENGTH,
    is_bool,
    is_count,
    is_header,
    is_logger_name,
    is_number,
    is_prefix,
    is_str_seq,
    optional_header,
    trust,
    valid_log_files,
    valid_networks,
    valid_patterns,
    valid_proxies,
    valid_token,
)

LEVEL_NAMES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Levels a success's lifecycle line may have (above WARNING it would fill the errors file).
LINE_LEVELS = ("DEBUG", "INFO", "WARNING")
#: How long an incoming request ID is remembered at most: the cache's memory grows with it.
MAX_SEEN_IDS_WINDOW = 7 * 86400

DEFAULT_REDACT_KEYS = (
    # Credentials: what logs someone in, or proves a second factor.
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "passcode",
    "secret",  # client_secret, secret_key, webhook_secret ...
    "secretkey",
    "token",  # access_token, refresh_token, csrf_token ... (not token_type: see PUBLIC_KEYS)
    "access",
    "refresh",
    "authorization",
    "credential",
    "credentials",
    "jwt",
    "otp",
    "totp",
    "hotp",
    "mfa",
    "cookie",
    "set_cookie",
    "session",
    "sessionid",
    "csrftoken",
    "api_key",
    "apikey",
    "private_key",
    "privatekey",
    # Cardholder and sensitive authentication data (PCI DSS 3.3, 3.4).
    "card_number",
    "cardnumber",
    "card",
    "pan",
    "cvv",
    "cvc",
    "cvv2",
    "cvc2",
    "cav2",
    "csc",
    "cvn",
    "security_code",
    "securitycode",
    "pin",
    "pinblock",
    "track1",
    "track2",
    "track_data",
    # Bank and identity numbers.
    "iban",
    "account_number",
    "ssn",
)


@dataclass(frozen=True)
class Row:
    """One setting: its default, its check and the sentence a wrong value gets, and how a
    valid value is read (`read`, e.g. patterns compiled once per settings)."""

    name: str
    default: Any
    check: Callable[[Any], bool]
    message: str
    read: Callable[[Any], Any] | None = None
    secret: bool = False  # never echoed in a message: a refused token is still a secret


_BOOL = "must be True or False"
_TRUST = "must be True, False or 'proxies' (only from TRUSTED_PROXIES)"
_OPTIONAL_HEADER = "must be an HTTP header name, or None for no such response header"
_LOGGER = "must be a logger name such as 'myapp.api'"


def _networks(value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in value)


def _patterns(value: Any) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern) for pattern in value)


def _log_files(value: Any) -> dict[str, str]:
    return {**DEFAULT_LOG_FILES, **value}


def _known_cache(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value in getattr(settings, "CACHES", {}))


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
    # The seed's logger names; build_logging() configures whatever names are set here.
    Row("APP_LOGGER", "billing", is_logger_name, _LOGGER),
    Row("REQUEST_LOGGER", "billing.api", is_logger_name, _LOGGER),
    Row("SECURITY_LOGGER", "billing.security", is_logger_name, _LOGGER),
    Row("EVENTS_LOGGER", "billing.events", is_logger_name, _LOGGER),
    Row("PERFORMANCE_LOGGER", "billing.performance", is_logger_name, _LOGGER),
    Row("VIEWS_LOGGER", "billing.views", is_logger_name, _LOGGER),
    Row("AUTH_LOGGER", "common.jwt_auth", is_logger_name, _LOGGER),
    Row("TASK_LOGGER", "billing.tasks", is_logger_name, _LOGGER),
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
    # --- Volume: sampling, per-line levels, flood control, metrics (README, "Running at volume")
    Row(
        "SAMPLE_RATE",
        1.0,
        lambda v: is_number(v) and 0.0 <= v <= 1.0,
        "must be a fraction of fast successful requests from 0.0 to 1.0",
    ),
    Row(
        "STARTED_LEVEL",
        "INFO",
        lambda v: v is None or v in LINE_LEVELS,
        "must be 'DEBUG', 'INFO', 'WARNING', or None for no started line",
    ),
    Row(
        "COMPLETED_LEVEL",
        "INFO",
        lambda v: v in LINE_LEVELS,
        "must be 'DEBUG', 'INFO' or 'WARNING'",
    ),
    Row(
        "SLOW_REQUEST_LEVEL",
        "WARNING",
        lambda v: v in LEVEL_NAMES,
        f"must be one of {', '.join(map(repr, LEVEL_NAMES))}",
    ),
    Row(
        "EXCLUDE_PATTERNS",
        (),
        valid_patterns,
        "must be a list of regular expressions that compile",
        read=_patterns,  # compiled once per settings, matched with search()
    ),
    Row(
        "FLOOD_LIMIT",
        10,
        is_count,
        "must be a number of records per window >= 0 (0 turns flood control off)",
    ),
    Row(
        "FLOOD_WINDOW",
        60.0,
        lambda v: is_number(v) and 0 < v <= 86400,
        "must be a number of seconds > 0 and <= 86400",
    ),
    Row(
        "FLOOD_LOGGERS",
        (),
        lambda v: is_str_seq(v) and all(is_logger_name(name) for name in v),
        "must be a list of logger names such as 'myapp.payments'",
        read=tuple,
    ),
    # One client for flood control: an IPv4 address, an IPv6 /64 (a whole /64 is one client).
    Row(
        "FLOOD_IPV4_PREFIX",
        32,
        lambda v: is_prefix(v, 8, 32),
        "must be a prefix length from 8 to 32: the IPv4 network flood control counts as one "
        "client (32: each address)",
    ),
    Row(
        "FLOOD_IPV6_PREFIX",
        64,
        lambda v: is_prefix(v, 16, 128),
        "must be a prefix length from 16 to 128: the IPv6 network flood control counts as one "
        "client (64: each /64)",
    ),
    Row("METRICS", True, is_bool, _BOOL),
    Row(
        "METRICS_ALLOWED_IPS",
        ("127.0.0.0/8", "::1"),
        valid_networks,
        "must be a list of client addresses or networks such as '10.0.0.0/8'",
        read=_networks,
    ),
    Row(
        "METRICS_TOKEN",
        None,
        valid_token,
        f"must be None or a token of at least {MIN_TOKEN_LENGTH} printable characters "
        "without spaces",
        secret=True,
    ),
    # --- Reused request IDs: the memory every worker shares (README, "Security of the logs")
    Row(
        "SEEN_IDS_CACHE",
        "default",
        _known_cache,
        "must be the alias of a cache in CACHES that every worker shares, "
        "or None for no reuse check of incoming request IDs",
    ),
    Row(
        "SEEN_IDS_WINDOW",
        3600.0,
        lambda v: is_number(v) and 0 < v <= MAX_SEEN_IDS_WINDOW,
        f"must be a number of seconds > 0 and <= {MAX_SEEN_IDS_WINDOW} (a week)",
    ),
    # --- Background tasks: Celery's signals carry the request's story (observability.celery)
    Row("CELERY", False, is_bool, _BOOL),
)

BY_NAME: dict[str, Row] = {row.name: row for row in ROWS}
DEFAULTS: dict[str, Any] = {row.name: row.default for row in ROWS}
