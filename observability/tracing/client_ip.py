"""The client's IP: REMOTE_ADDR, unless trusted proxies sit in front.

TRUSTED_PROXIES = 0 (default): X-Forwarded-For is ignored, it is the client's to forge.
TRUSTED_PROXIES = N: N proxies append to X-Forwarded-For; the client is the N-th address
from the right (REMOTE_ADDR being the last proxy).
TRUSTED_PROXIES = ["10.0.0.0/8", ...]: walk X-Forwarded-For from the right past every
address inside those networks; the first one outside is the client.

Only the right end of the header is the proxies' (each appends its peer's address, and a
server joins repeated headers in order with ","); the rest is whatever the client wrote.
So the header is read from the right, one element at a time, and never cut: at most
MAX_ELEMENTS elements of at most ELEMENT_LIMIT characters are looked at, however long it
is. Where it cannot be read safely (too few hops, an element too long or not an address,
the bound reached), the answer is the nearest address a trusted machine gave us:
REMOTE_ADDR, or in a networks walk the last trusted hop. `Forwarded` (RFC 7239),
`X-Real-IP` and the like are never read.

An IPv4-mapped IPv6 address (a dual-stack socket's peer) is its IPv4 address, here and in
the networks. The address is shown masked like any client text: a client chooses the low
64 bits of its IPv6 address, enough for a card number's digits.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache

from observability.conf import on_reload
from observability.masking.redaction import get_redactor

UNKNOWN = "-"
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HOP_LIMIT = 64  # characters of one address as a proxy writes it, port and zone ID included
ELEMENT_LIMIT = 128  # characters of one X-Forwarded-For element, blanks around it included
MAX_ELEMENTS = 64  # elements read from the right (empty ones too) in a networks walk
# An IPv6 zone ID (fe80::1%eth0, fe80::1%3): ipaddress accepts any text there, a log must
# not. An interface name (at most 15 characters on Linux) or a numeric scope index.
_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,14}|[0-9]{1,10}")
_PORT = re.compile(r"[0-9]{1,5}")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _port_ok(port: str) -> bool:
    return _PORT.fullmatch(port) is not None and int(port) <= 65535


def address_of(text: str) -> Address | None:
    """The IP address `text` is (an IPv4-mapped IPv6 address: its IPv4 one); None if none."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=4096)
def _parse_ip(value: str) -> Address | None:
    """The address in `value` (an IP, `v4:port`, `[v6]` or `[v6]:port`); None if none."""
    value = value.strip()
    if len(value) > HOP_LIMIT:
        return None
    if value.startswith("["):
        host, bracket, port = value[1:].partition("]")
        if not bracket or (port and not (port[0] == ":" and _port_ok(port[1:]))):
            return None
        value = host
    elif value.count(":") == 1:  # v4:port
        value, _, port = value.partition(":")
        if not _port_ok(port):
            return None
    _, percent, zone = value.partition("%")
    if percent and _ZONE.fullmatch(zone) is None:
        return None
    return address_of(value)


def _as_ipv4(network: Network) -> Network:
    """An IPv6 network of IPv4-mapped addresses (::ffff:10.0.0.0/104) as the IPv4 one."""
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


@lru_cache(maxsize=16)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(_as_ipv4(ipaddress.ip_network(p, strict=False)) for p in proxies)


@lru_cache(maxsize=64)
def _read_as_ipv4(networks: tuple[Network, ...]) -> tuple[Network, ...]:
    return tuple(map(_as_ipv4, networks))


def _inside(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


def address_in(address: Address | None, networks: Sequence[Network]) -> bool:
    """Whether an address is inside one of the networks (IPv4-mapped read as IPv4)."""
    return address is not None and _inside(address, _read_as_ipv4(tuple(networks)))


def _elements(header: str, limit: int) -> Iterator[str | None]:
    """The non-empty elements of a comma-separated header, the last one first.

    At most `limit` elements are read (empty ones too: HTTP lists may hold them); an
    element longer than ELEMENT_LIMIT ends the reading with None. No step looks at more
    than ELEMENT_LIMIT + 1 characters, so the work is bounded whatever the header's size.
    """
    end = len(header)
    for _ in range(limit):
        if end <= 0:
            return
        start = header.rfind(",", max(0, end - ELEMENT_LIMIT - 1), end)
        if start < 0 and end > ELEMENT_LIMIT:
            yield None
            return
        element = header[start + 1 : end]
        end = start
        if element.strip():
            yield element


def _nth_from_right(header: str, count: int) -> Address | None:
    """The `count`-th address from the right; None unless every hop up to it is one."""
    elements = _elements(header, max(count, MAX_ELEMENTS))
    for seen, element in enumerate(elements, start=1):
        address = None if element is None else _parse_ip(element)
        if address is None:
            return None
        if seen == count:
            return address
    return None


def client_address(
    meta: Mapping[str, str], trusted_proxies: int | Sequence[str] = 0
) -> Address | None:
    """The client's address by the rules above; None when there is none to tell."""
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "") if trusted_proxies else None
    if isinstance(trusted_proxies, int) and forwarded:
        # REMOTE_ADDR is the last proxy; it and the other N-1 proxies appended a hop each.
        client = _nth_from_right(forwarded, trusted_proxies)
        if client is not None:
            return client
    remote = _parse_ip(meta.get("REMOTE_ADDR", "") or "")
    if not forwarded or isinstance(trusted_proxies, int):
        return remote
    networks = _networks(tuple(trusted_proxies))
    if remote is None or not _inside(remote, networks):
        return remote
    client = remote
    for element in _elements(forwarded, MAX_ELEMENTS):
        address = None if element is None else _parse_ip(element)
        if address is None:
            return client  # a trusted proxy gave this hop: the nearest we can believe
        if not _inside(address, networks):
            return address
        client = address
    return client


@lru_cache(maxsize=4096)
def _shown(address: Address) -> str:
    return get_redactor().text(str(address))


@lru_cache(maxsize=4096)
def _remote_shown(remote: str) -> str:
    """REMOTE_ADDR as the logs show it: the default's path, one cache lookup a request."""
    address = _parse_ip(remote)
    return UNKNOWN if address is None else _shown(address)


@on_reload
def _forget_shown() -> None:  # REDACT may have changed
    _shown.cache_clear()
    _remote_shown.cache_clear()


def get_client_ip(meta: Mapping[str, str], trusted_proxies: int | Sequence[str] = 0) -> str:
    """The client's address as the logs show it: normalised, card-like digits masked."""
    if not trusted_proxies:
        return _remote_shown(meta.get("REMOTE_ADDR", "") or "")
    address = client_address(meta, trusted_proxies)
    return UNKNOWN if address is None else _shown(address)


def from_trusted_proxy(meta: Mapping[str, str], trusted_proxies: int | Sequence[str]) -> bool:
    """Whether the peer (REMOTE_ADDR) is one of the trusted proxies."""
    if not trusted_proxies:
        return False
    if isinstance(trusted_proxies, int):
        return True  # N proxies in front: every peer is the nearest of them
    remote = _parse_ip(meta.get("REMOTE_ADDR", "") or "")
    return remote is not None and _inside(remote, _networks(tuple(trusted_proxies)))


def client_group(address: Address | None, ipv4_prefix: int = 32, ipv6_prefix: int = 64) -> str:
    """The client a bound counts, from the parsed address (never the masked text the logs
    show): the IPv4 address (or its /`ipv4_prefix`), the IPv6 address's /`ipv6_prefix` (a
    client chooses the low 64 bits of its address); an IPv4-mapped address is its IPv4
    client; UNKNOWN when there is no address."""
    if address is None:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        if ipv4_prefix == 32:
            return str(address)
        return str(ipaddress.IPv4Network((int(address), ipv4_prefix), strict=False))
    return str(ipaddress.IPv6Network((int(address), ipv6_prefix), strict=False))  # no zone ID
