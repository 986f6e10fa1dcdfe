"""The OBSERVABILITY settings: defaults, validation, and reload on override_settings.

Read a flag as `obs_settings.SLOW_REQUEST_THRESHOLD`; the user's dict wins over DEFAULTS.
Modelled on DRF's `api_settings`.
"""

from __future__ import annotations

import ipaddress
import numbers
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

LEVEL_NAMES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Levels a success's lifecycle line may have (above WARNING it would fill the errors file).
LINE_LEVELS = ("DEBUG", "INFO", "WARNING")
MIN_TOKEN_LENGTH = 16
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

#: The five files, by the tag logtrace shows beside their lines (the seed's names).
DEFAULT_LOG_FILES = {
    "general": "billing_api.log",
    "debug": "billing_api_debug.log",
    "errors": "billing_api_errors.log",
    "requests": "billing_api_requests.log",
    "security": "billing_api_security.log",
}

DEFAULTS: dict[str, Any] = {
    "ENABLED": True,
    "REQUEST_ID_HEADER": "X-Request-ID",
    "TRUST_INCOMING_REQUEST_ID": True,
    "RESPONSE_HEADER": "X-Request-ID",
    "TRUST_INCOMING_TRACEPARENT": True,
    "TRACE_RESPONSE_HEADER": "traceresponse",
    # The seed's logger names; build_logging() configures whatever names are set here.
    "APP_LOGGER": "billing",
    "REQUEST_LOGGER": "billing.api",
    "SECURITY_LOGGER": "billing.security",
    "EVENTS_LOGGER": "billing.events",
    "PERFORMANCE_LOGGER": "billing.performance",
    "VIEWS_LOGGER": "billing.views",
    "AUTH_LOGGER": "common.jwt_auth",
    "LOG_FILES": DEFAULT_LOG_FILES,
    "SLOW_REQUEST_THRESHOLD": 1.0,
    "EXCLUDE_PATHS": ("/health/",),
    "LOG_QUERY_STRING": True,
    "LOG_USER_AGENT": True,
    "CLIENT_ERROR_LEVEL": "INFO",
    # Trace viewer: event field name -> admin URL name ("payment_id": "admin:shop_payment_change").
    # None: every model registered with the admin site, by "<model_name>_id".
    "VIEWER_ADMIN_LINKS": None,
    "TRUSTED_PROXIES": 0,
    "REDACT": True,
    "REDACT_KEYS": DEFAULT_REDACT_KEYS,
    # --- Volume: sampling, per-line levels, flood control, metrics (README, "Running at volume")
    "SAMPLE_RATE": 1.0,
    "STARTED_LEVEL": "INFO",
    "COMPLETED_LEVEL": "INFO",
    "SLOW_REQUEST_LEVEL": "WARNING",
    "EXCLUDE_PATTERNS": (),
    "FLOOD_LIMIT": 10,
    "FLOOD_WINDOW": 60.0,
    "FLOOD_LOGGERS": (),
    # One client for flood control: an IPv4 address, an IPv6 /64 (a whole /64 is one client).
    "FLOOD_IPV4_PREFIX": 32,
    "FLOOD_IPV6_PREFIX": 64,
    "METRICS": True,
    "METRICS_ALLOWED_IPS": ("127.0.0.0/8", "::1"),
    "METRICS_TOKEN": None,
    # --- Reused request IDs: the memory every worker shares (README, "Security of the logs")
    "SEEN_IDS_CACHE": "default",
    "SEEN_IDS_WINDOW": 3600.0,
    # --- Inside a request: queries, spans, outgoing calls (README, "Following a request")
    "SPAN_LOGGER": "billing.spans",
    "SPAN_LEVEL": "INFO",
    "DB_QUERIES": True,
    "DB_QUERY_LEVEL": "DEBUG",
    "REPEATED_QUERY_COUNT": 10,
    "REPEATED_QUERY_TIME": 0.0,
    "SLOW_QUERY_THRESHOLD": 0.5,
    # Where the trace viewer is served, for links to a request (Sentry's events carry one).
    "VIEWER_URL": None,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_prefix(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_str_seq(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


def _is_header(value: Any) -> bool:
    """An HTTP header name as the middleware may send it: ASCII letters, digits and "-"
    (str.isalnum alone would let "X-Réquest-ID" through, which HTTP cannot carry)."""
    return (
        isinstance(value, str)
        and bool(value)
        and value.isascii()
        and all(c.isalnum() or c == "-" for c in value)
    )


def _is_logger_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and not value.startswith(".")


def _valid_log_files(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) <= set(DEFAULT_LOG_FILES)
        and all(
            isinstance(name, str) and name and "/" not in name and name not in (".", "..")
            for name in value.values()
        )
    )


def _valid_networks(value: Any) -> bool:
    if not _is_str_seq(value):
        return False
    try:
        for item in value:
            ipaddress.ip_network(item, strict=False)
    except ValueError:
        return False
    return True


def _valid_patterns(value: Any) -> bool:
    if not _is_str_seq(value):
        return False
    try:
        for pattern in value:
            re.compile(pattern)
    except re.error:
        return False
    return True


def _valid_token(value: Any) -> bool:
    return value is None or (
        isinstance(value, str)
        and len(value) >= MIN_TOKEN_LENGTH
        and value.isprintable()
        and not any(c.isspace() for c in value)
    )


def _valid_proxies(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return _valid_networks(value)


Rule = tuple[Callable[[Any], bool], str]
#: Trust what a client sent: always, never, or only from TRUSTED_PROXIES.
_TRUST: Rule = (
    lambda v: isinstance(v, bool) or v == "proxies",
    "must be True, False or 'proxies' (only from TRUSTED_PROXIES)",
)
_OPTIONAL_HEADER: Rule = (
    lambda v: v is None or _is_header(v),
    "must be an HTTP header name, or None for no such response header",
)

RULES: dict[str, Rule] = {
    "ENABLED": (lambda v: isinstance(v, bool), "must be True or False"),
    "REQUEST_ID_HEADER": (_is_header, "must be an HTTP header name such as 'X-Request-ID'"),
    "TRUST_INCOMING_REQUEST_ID": _TRUST,
    "RESPONSE_HEADER": _OPTIONAL_HEADER,
    "TRUST_INCOMING_TRACEPARENT": _TRUST,
    "TRACE_RESPONSE_HEADER": _OPTIONAL_HEADER,
    **dict.fromkeys(
        (
            "APP_LOGGER",
            "REQUEST_LOGGER",
            "SECURITY_LOGGER",
            "EVENTS_LOGGER",
            "PERFORMANCE_LOGGER",
            "VIEWS_LOGGER",
            "AUTH_LOGGER",
            "SPAN_LOGGER",
        ),
        (_is_logger_name, "must be a logger name such as 'myapp.api'"),
    ),
    "LOG_FILES": (
        _valid_log_files,
        f"must map some of {', '.join(DEFAULT_LOG_FILES)} to file names (no directories)",
    ),
    "SLOW_REQUEST_THRESHOLD": (
        lambda v: _is_number(v) and v >= 0,
        "must be a number of seconds >= 0",
    ),
    "EXCLUDE_PATHS": (
        lambda v: _is_str_seq(v) and all(p.startswith("/") for p in v),
        "must be a list of path prefixes starting with '/'",
    ),
    "LOG_QUERY_STRING": (lambda v: isinstance(v, bool), "must be True or False"),
    "LOG_USER_AGENT": (lambda v: isinstance(v, bool), "must be True or False"),
    "CLIENT_ERROR_LEVEL": (
        lambda v: v in {"DEBUG", "INFO", "WARNING"},
        "must be 'DEBUG', 'INFO' or 'WARNING'",
    ),
    "VIEWER_ADMIN_LINKS": (
        lambda v: v is None or (isinstance(v, dict) and _is_str_seq([*v, *v.values()])),
        "must be None or a dict of field names to admin URL names",
    ),
    "TRUSTED_PROXIES": (
        _valid_proxies,
        "must be a number of proxies >= 0 or a list of proxy addresses/networks",
    ),
    "REDACT": (lambda v: isinstance(v, bool), "must be True or False"),
    "REDACT_KEYS": (
        lambda v: _is_str_seq(v) and all(v),
        "must be a list of non-empty key names",
    ),
    # --- Volume
    "SAMPLE_RATE": (
        lambda v: _is_number(v) and 0.0 <= v <= 1.0,
        "must be a fraction of fast successful requests from 0.0 to 1.0",
    ),
    "STARTED_LEVEL": (
        lambda v: v is None or v in LINE_LEVELS,
        "must be 'DEBUG', 'INFO', 'WARNING', or None for no started line",
    ),
    "COMPLETED_LEVEL": (lambda v: v in LINE_LEVELS, "must be 'DEBUG', 'INFO' or 'WARNING'"),
    "SLOW_REQUEST_LEVEL": (
        lambda v: v in LEVEL_NAMES,
        f"must be one of {', '.join(map(repr, LEVEL_NAMES))}",
    ),
    "EXCLUDE_PATTERNS": (_valid_patterns, "must be a list of regular expressions that compile"),
    "FLOOD_LIMIT": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "must be a number of records per window >= 0 (0 turns flood control off)",
    ),
    "FLOOD_WINDOW": (
        lambda v: _is_number(v) and 0 < v <= 86400,
        "must be a number of seconds > 0 and <= 86400",
    ),
    "FLOOD_LOGGERS": (
        lambda v: _is_str_seq(v) and all(_is_logger_name(name) for name in v),
        "must be a list of logger names such as 'myapp.payments'",
    ),
    "FLOOD_IPV4_PREFIX": (
        lambda v: _is_prefix(v, 8, 32),
        "must be a prefix length from 8 to 32: the IPv4 network flood control counts as one "
        "client (32: each address)",
    ),
    "FLOOD_IPV6_PREFIX": (
        lambda v: _is_prefix(v, 16, 128),
        "must be a prefix length from 16 to 128: the IPv6 network flood control counts as one "
        "client (64: each /64)",
    ),
    "METRICS": (lambda v: isinstance(v, bool), "must be True or False"),
    "METRICS_ALLOWED_IPS": (
        _valid_networks,
        "must be a list of client addresses or networks such as '10.0.0.0/8'",
    ),
    "METRICS_TOKEN": (
        _valid_token,
        f"must be None or a token of at least {MIN_TOKEN_LENGTH} printable characters "
        "without spaces",
    ),
    "SEEN_IDS_CACHE": (
        lambda v: v is None or (isinstance(v, str) and v in getattr(settings, "CACHES", {})),
        "must be the alias of a cache in CACHES that every worker shares, "
        "or None for no reuse check of incoming request IDs",
    ),
    "SEEN_IDS_WINDOW": (
        lambda v: _is_number(v) and 0 < v <= MAX_SEEN_IDS_WINDOW,
        f"must be a number of seconds > 0 and <= {MAX_SEEN_IDS_WINDOW} (a week)",
    ),
    "SPAN_LEVEL": (
        lambda v: v in LEVEL_NAMES,
        f"must be one of {', '.join(map(repr, LEVEL_NAMES))}",
    ),
    "DB_QUERIES": (lambda v: isinstance(v, bool), "must be True or False"),
    "DB_QUERY_LEVEL": (
        lambda v: v is None or v in LEVEL_NAMES,
        "must be a level name such as 'DEBUG', or None for no record per query",
    ),
    "REPEATED_QUERY_COUNT": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 2,
        "must be a number of runs of one query in one request >= 2",
    ),
    "REPEATED_QUERY_TIME": (
        lambda v: _is_number(v) and v >= 0,
        "must be a number of seconds >= 0 (the repeated query's total time)",
    ),
    "SLOW_QUERY_THRESHOLD": (
        lambda v: v is None or (_is_number(v) and v > 0),
        "must be a number of seconds > 0, or None for no slow query warning",
    ),
    "VIEWER_URL": (
        lambda v: v is None or (isinstance(v, str) and bool(re.fullmatch(r"https?://\S+", v))),
        "must be None or the trace viewer's URL, such as 'https://billing.example.com/ops/requests/'",
    ),
}


#: Never echoed in a message: a refused token is still somebody's secret.
SECRET_SETTINGS = frozenset({"METRICS_TOKEN"})


def _secret_shown(value: Any) -> str:
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
        check, constraint = RULES[key]
        if not check(value):
            shown = _secret_shown(value) if key in SECRET_SETTINGS else repr(value)
            problems.append(f"OBSERVABILITY[{key!r}] {constraint}, got {shown}")
    request_logger = user_settings.get("REQUEST_LOGGER", DEFAULTS["REQUEST_LOGGER"])
    flood_loggers = user_settings.get("FLOOD_LOGGERS", ())
    if _is_str_seq(flood_loggers) and request_logger in flood_loggers:
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
    value = user_settings.get(name, DEFAULTS[name])
    if name in ("EXCLUDE_PATHS", "FLOOD_LOGGERS"):
        value = tuple(value)
    elif name == "EXCLUDE_PATTERNS":  # compiled once per settings, matched with search()
        value = tuple(re.compile(pattern) for pattern in value)
    elif name == "METRICS_ALLOWED_IPS":
        value = tuple(ipaddress.ip_network(item, strict=False) for item in value)
    elif name == "LOG_FILES":
        value = {**DEFAULT_LOG_FILES, **value}
    return value


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
