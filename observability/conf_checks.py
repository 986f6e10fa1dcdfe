"""The checks the OBSERVABILITY rows use (each takes a value and says whether it is valid),
and the defaults that are lists: the file names, the keys whose values are masked."""

from __future__ import annotations

import ipaddress
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

#: The shortest secret token accepted anywhere (METRICS_TOKEN, and the environment's).
MIN_TOKEN_LENGTH = 16
#: A rate: how many per second, minute, hour or day (`120/min`).
RATE = re.compile(r"([1-9][0-9]{0,8})/(s|min|hour|day)")
RATE_SECONDS = {"s": 1, "min": 60, "hour": 3600, "day": 86400}
#: How long an incoming request ID is remembered at most: the cache's memory grows with it.
MAX_SEEN_IDS_WINDOW = 7 * 86400
#: A client's quota of remembered IDs at most: each is a slot (a row) in the quota cache.
MAX_SEEN_IDS_PER_CLIENT = 1_000_000
#: The five files' tags, as logtrace shows them beside their lines.
LOG_FILE_TAGS = ("general", "debug", "errors", "requests", "security")


def log_file_names(prefix: str) -> dict[str, str]:
    """The five files named after `prefix`: `<prefix>.log` (general), `<prefix>_<tag>.log`."""
    return {tag: prefix + ("" if tag == "general" else f"_{tag}") + ".log" for tag in LOG_FILE_TAGS}


#: Neutral names (`app.log`, `app_requests.log` ...): a project names its own, as this one
#: keeps the seed's `billing_api*.log` (config/logs.py: log_file_names("billing_api")).
DEFAULT_LOG_FILES = log_file_names("app")


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


# A host name as a resolver takes it (RFC 1123 labels), or an IPv4 address.
_HOST = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_PORT = re.compile(r"[0-9]{1,5}")


def parse_address(value: Any) -> tuple[str, int, bool] | None:
    """(host, port, is IPv6) of a listening address "host:port" or "[IPv6]:port" (port 1 to
    65535); None when `value` is not one."""
    if not isinstance(value, str) or not value.isascii() or not value.isprintable():
        return None
    host, colon, port = value.rpartition(":")
    if not colon or _PORT.fullmatch(port) is None or not 1 <= int(port) <= 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        inside = host.removeprefix("[").removesuffix("]")
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            return None
        return inside, int(port), True
    if _HOST.fullmatch(host) is None:
        return None
    if host.replace(".", "").isdigit():  # all digits: an IPv4 address, or nothing
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return None
    return host, int(port), False


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


def optional_name(value: Any) -> bool:
    return value is None or (
        isinstance(value, str) and 0 < len(value) <= 256 and value.isprintable()
    )


def file_mode(value: Any) -> bool:
    """The owner reads and writes, nobody executes."""
    return is_prefix(value, 0, 0o777) and value & 0o600 == 0o600 and not value & 0o111


def dir_mode(value: Any) -> bool:
    """The owner reads, writes and enters."""
    return is_prefix(value, 0, 0o777) and value & 0o700 == 0o700


def known_cache(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value in getattr(settings, "CACHES", {}))


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
