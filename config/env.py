"""Reading the environment: each variable parsed and checked once, with a sentence naming
the variable, the constraint and the value when it is wrong (a secret's value never shown).
"""

from __future__ import annotations

import importlib.metadata
import ipaddress
import math
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from observability.conf import MIN_TOKEN_LENGTH
from observability.conf_checks import parse_address


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    msg = f"Environment variable {name} must be a boolean (1/0/true/false), got {raw!r}"
    raise ImproperlyConfigured(msg)


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def invalid(name: str, constraint: str, raw: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name} {constraint}, got {raw!r}")


def _env_number(name: str, parse: type, ok: Callable[[Any], bool], constraint: str) -> Any:
    """The variable parsed by `parse` if `ok` accepts it; None when unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = parse(raw)
    except ValueError:
        raise invalid(name, constraint, raw) from None
    if not ok(value):
        raise invalid(name, constraint, raw)
    return value


def env_int(name: str, default: int | None, *, minimum: int) -> int | None:
    """An integer >= minimum, or `default` when the variable is unset or empty."""
    value = _env_number(name, int, lambda v: v >= minimum, f"must be an integer >= {minimum}")
    return default if value is None else value


def env_seconds(name: str, default: float, *, positive: bool = False) -> float:
    """A finite number of seconds >= 0 (> 0 when `positive`)."""
    constraint = f"must be a number of seconds {'> 0' if positive else '>= 0'} (such as 1.5)"

    def ok(value: float) -> bool:
        return math.isfinite(value) and (value > 0 if positive else value >= 0)

    value = _env_number(name, float, ok, constraint)
    return default if value is None else float(value)


def _network_list(name: str, raw: str, constraint: str) -> list[str]:
    """The comma-separated addresses/networks in `raw`, each checked by ipaddress."""
    networks = [item.strip() for item in raw.split(",") if item.strip()]
    try:
        for network in networks:
            ipaddress.ip_network(network, strict=False)
    except ValueError:
        raise invalid(name, constraint, raw) from None
    return networks


def env_proxies(name: str) -> int | list[str]:
    """A number of proxies, or a comma-separated list of proxy addresses/networks."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return 0
    if raw.isdigit():
        return int(raw)
    constraint = "must be a number of proxies or a comma-separated list of networks"
    return _network_list(name, raw, constraint)


def env_fraction(name: str, default: float) -> float:
    """A number from 0 to 1."""
    constraint = "must be a number from 0 to 1 (such as 0.1)"
    value = _env_number(name, float, lambda v: 0.0 <= v <= 1.0, constraint)
    return default if value is None else float(value)


def env_networks(name: str, default: str) -> list[str]:
    """A comma-separated list of addresses/networks."""
    raw = os.environ.get(name, "").strip() or default
    return _network_list(name, raw, "must be a comma-separated list of addresses or networks")


def env_secret(name: str, *, min_length: int = MIN_TOKEN_LENGTH) -> str | None:
    """A token of at least min_length printable characters without spaces; never echoed."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if len(raw) < min_length or not raw.isprintable() or any(c.isspace() for c in raw):
        msg = (
            f"Environment variable {name} must be at least {min_length} printable characters "
            f"without spaces, got {len(raw)} characters (not shown)"
        )
        raise ImproperlyConfigured(msg)
    return raw


def env_address(name: str) -> str | None:
    """A listening address host:port (IPv6 as [::1]:9808), or None when unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if parse_address(raw) is None:
        constraint = (
            "must be an address host:port such as 127.0.0.1:9808 (port 1 to 65535; IPv6 as "
            "[::1]:9808), or empty for none"
        )
        raise invalid(name, constraint, raw)
    return raw


_RATE = re.compile(r"([0-9]{1,9})/(s|sec|second|m|min|minute|h|hour|d|day)")


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate: a whole number >= 1 per second, minute, hour or day."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    match = _RATE.fullmatch(raw)
    if match is None or int(match.group(1)) < 1:
        constraint = (
            "must be a rate such as 20/min (a whole number >= 1, then /s, /min, /hour or /day)"
        )
        raise invalid(name, constraint, raw)
    return raw


def env_mode(name: str, default: int) -> int:
    """A file or directory mode in octal (`0640`, `0o640`)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw.removeprefix("0o"), 8)
    except ValueError:
        raise invalid(name, "must be an octal file mode such as 0640", raw) from None


def package_version(distribution: str) -> str | None:
    """The installed version of `distribution` (pyproject.toml's), None when not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() not in {c.lower() for c in choices}:
        raise invalid(name, f"must be one of {', '.join(choices)}", raw)
    return raw


BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")


def env_broker_url(name: str) -> str:
    """A Redis or RabbitMQ URL (or "" for the embedded default), checked here, not in kombu."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return ""
    constraint = (
        "must be a broker URL such as redis://127.0.0.1:6379/0 or "
        "amqp://guest:guest@127.0.0.1:5672// (scheme one of " + ", ".join(BROKER_SCHEMES) + ")"
    )
    shown = re.sub(r"//[^/@]*@", "//***@", raw)  # never echo a password
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise invalid(name, constraint, shown) from None
    if parts.scheme not in BROKER_SCHEMES or not parts.hostname or port == 0:
        raise invalid(name, constraint, shown)
    return raw
