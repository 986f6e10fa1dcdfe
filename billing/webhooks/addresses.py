"""Refuse webhook URLs that reach inside: loopback, link-local, private, reserved addresses.

Checked when an endpoint is saved and again before each delivery (a name can resolve to
another address later). WEBHOOK_ALLOW_PRIVATE_URLS=1 allows them (a test's local receiver,
a receiver on the same network on purpose).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeURL(ValueError):
    """A URL this server will not send to; the message says why."""


def _inside(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def check_url(url: str) -> None:
    """Raise UnsafeURL unless `url` is http(s) to a host whose every address is public."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = "must be an http:// or https:// URL with a host"
        raise UnsafeURL(msg)
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError):
        msg = f"host {parts.hostname!r} does not resolve"
        raise UnsafeURL(msg) from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if _inside(address):
            msg = (
                f"host {parts.hostname!r} resolves to {address}, a loopback, private or "
                "link-local address (set WEBHOOK_ALLOW_PRIVATE_URLS=1 to allow it)"
            )
            raise UnsafeURL(msg)
