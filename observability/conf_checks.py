"""The checks the OBSERVABILITY rows use: each takes a value and says whether it is valid."""

from __future__ import annotations

import ipaddress
import numbers
import re
from typing import Any

#: The shortest secret token accepted anywhere (METRICS_TOKEN, and the environment's).
MIN_TOKEN_LENGTH = 16
#: The five files, by the tag logtrace shows beside their lines (the seed's names).
DEFAULT_LOG_FILES = {
    "general": "billing_api.log",
    "debug": "billing_api_debug.log",
    "errors": "billing_api_errors.log",
    "requests": "billing_api_requests.log",
    "security": "billing_api_security.log",
}


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_prefix(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def is_str_seq(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


def is_header(value: Any) -> bool:
    """An HTTP header name as the middleware may send it: ASCII letters, digits and "-"
    (str.isalnum alone would let "X-Réquest-ID" through, which HTTP cannot carry)."""
    return (
        isinstance(value, str)
        and bool(value)
        and value.isascii()
        and all(c.isalnum() or c == "-" for c in value)
    )


def is_logger_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and not value.startswith(".")


def valid_log_files(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) <= set(DEFAULT_LOG_FILES)
        and all(
            isinstance(name, str) and name and "/" not in name and name not in (".", "..")
            for name in value.values()
        )
    )


def valid_networks(value: Any) -> bool:
    if not is_str_seq(value):
        return False
    try:
        for item in value:
            ipaddress.ip_network(item, strict=False)
    except ValueError:
        return False
    return True


def valid_patterns(value: Any) -> bool:
    if not is_str_seq(value):
        return False
    try:
        for pattern in value:
            re.compile(pattern)
    except re.error:
        return False
    return True


def valid_token(value: Any) -> bool:
    return value is None or (
        isinstance(value, str)
        and len(value) >= MIN_TOKEN_LENGTH
        and value.isprintable()
        and not any(c.isspace() for c in value)
    )


def valid_proxies(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return valid_networks(value)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def trust(value: Any) -> bool:
    return isinstance(value, bool) or value == "proxies"


def optional_header(value: Any) -> bool:
    return value is None or is_header(value)
