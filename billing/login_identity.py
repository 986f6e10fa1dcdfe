"""Who a login attempt is counted against: the client's network, and the username as typed.

The address is read as ``TRUSTED_PROXIES`` says (a client's own ``X-Forwarded-For`` is
ignored); the username as the login forms read it, so that spelling it otherwise buys no
new budget (billing.throttling).
"""

from __future__ import annotations

import ipaddress
import unicodedata

from django.http import HttpRequest

from observability import client_address_of

UNKNOWN = "-"  # no address to tell (a test client's, a socket's without one)


def client_network(request: HttpRequest) -> str:
    """The client a throttle counts: an IPv4 address, or the /64 of an IPv6 address.

    The address itself, never as the logs show it (masked, a card-like one reads as none).
    """
    address = client_address_of(request)
    if address is None:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def username_key(value: object) -> str | None:
    """The username as the login serializer and form read it, case-folded; None if none.

    DRF's CharField takes str, int and float (not bool) and strips whitespace; the admin's
    form also applies NFKC. Coarser than the database's own comparison, never finer.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    name = unicodedata.normalize("NFKC", str(value).strip()).casefold()
    return name or None


def body_username(request: HttpRequest) -> object:
    """The `username` of a login's JSON body (DRF request), or None."""
    data = getattr(request, "data", None)
    return data.get("username") if isinstance(data, dict) else None
