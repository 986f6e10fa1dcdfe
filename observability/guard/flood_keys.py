"""Flood control's keys: what a record of a guarded logger is counted under.

- a security record: (event type, or call site for a record that is no event; client),
  so one client's 140,000 failed logins cannot rotate the security history away, and one
  client's flood never mutes another's. The client is its network: the IPv4 address
  (FLOOD_IPV4_PREFIX, 32) or the IPv6 /64 (FLOOD_IPV6_PREFIX): addresses rotated inside one
  /64 are one client;
- any other record of a guarded logger: (call site), a storm of one error from one code
  path, whichever clients set it off.

The key also holds the logger and the level, so a summary reaches the same files as
the records it stands for.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any

from observability.conf import obs_settings
from observability.tracing.client_ip import address_of
from observability.tracing.context import CONTEXT_ATTR, EMPTY, current

#: How a logger's records are keyed: by client, by call site, or not at all.
SECURITY = "security"
STORM = "storm"
NEVER = "never"

Key = tuple[str, int, str, str]  # logger, level, event type or call site, client


def client_source(ip: Any) -> str:
    """The client a record's IP stands for: the IPv4 address (or its FLOOD_IPV4_PREFIX
    network), the IPv6 address's FLOOD_IPV6_PREFIX network (`2001:db8:1:2::/64`). An
    IPv4-mapped IPv6 address is its IPv4 client. Anything else (no client, or text that is
    no address) is no client: "-", never kept as a key of its own."""
    if type(ip) is not str or ip == EMPTY:
        return EMPTY
    address = address_of(ip)
    if address is None:
        return EMPTY
    settings = obs_settings
    if isinstance(address, ipaddress.IPv4Address):
        prefix = settings.FLOOD_IPV4_PREFIX
        if prefix == 32:
            return str(address)
        return str(ipaddress.IPv4Network((int(address), prefix), strict=False))
    prefix = settings.FLOOD_IPV6_PREFIX
    network = ipaddress.IPv6Network((int(address), prefix), strict=False)  # no zone ID
    return str(network.network_address) if prefix == 128 else str(network)


DJANGO_SECURITY = "django.security"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def django_event_type(logger_name: str) -> str:
    """`django.security.DisallowedHost` -> `django_disallowed_host` (a metrics label)."""
    last = logger_name.rsplit(".", 1)[-1] if logger_name != DJANGO_SECURITY else "security"
    return "django_" + _CAMEL.sub("_", last).lower().replace(".", "_")


def _client(record: logging.LogRecord) -> Any:
    attrs = record.__dict__
    ip = attrs.get("ip")
    if ip:
        return ip
    context = current()
    if context["request_id"] is None and "request" in attrs:
        # Django logs some security records after our middleware has returned (a bad
        # Host raised in it): the context the middleware left on the request.
        context = getattr(attrs["request"], CONTEXT_ATTR, context)
    return context.get("ip") or EMPTY


def key_of(record: logging.LogRecord, kind: str) -> Key:
    """The key a record of a logger of this kind (SECURITY or STORM) is counted under."""
    call_site = f"{record.pathname}:{record.lineno}"
    if kind == SECURITY:
        event_type = record.__dict__.get("event_type")
        what = str(event_type) if event_type else call_site
        return record.name, record.levelno, what, client_source(_client(record))
    return record.name, record.levelno, call_site, EMPTY
