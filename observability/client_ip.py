"""The client's IP: REMOTE_ADDR, unless trusted proxies sit in front.

TRUSTED_PROXIES = 0 (default): X-Forwarded-For is ignored, it is the client's to forge.
TRUSTED_PROXIES = N: N proxies append to X-Forwarded-For; the client is the N-th address
from the right (REMOTE_ADDR being the last proxy).
TRUSTED_PROXIES = ["10.0.0.0/8", ...]: walk X-Forwarded-For from the right past every
address inside those networks; the first one outside is the client.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

UNKNOWN = "-"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HOP_LIMIT = 64  # characters of one X-Forwarded-For hop worth parsing
# An IPv6 zone ID (fe80::1%eth0, fe80::1%3): ipaddress accepts any text there, a log must
# not. An interface name (at most 15 characters on Linux) or a numeric scope index.
_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,14}|[0-9]{1,10}")


@lru_cache(maxsize=4096)
def _parse_ip(value: str) -> str | None:
    """The address in `value` (an IP, `v4:port` or `[v6]:port`), normalised; None if none."""
    value = value.strip()
    if len(value) > HOP_LIMIT:
        return None
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    _, percent, zone = value.partition("%")
    if percent and _ZONE.fullmatch(zone) is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


@lru_cache(maxsize=16)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(ip: str, networks: Sequence[Network]) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in network for network in networks)


def from_trusted_proxy(meta: Mapping[str, str], trusted_proxies: int | Sequence[str]) -> bool:
    """Whether the peer (REMOTE_ADDR) is one of the trusted proxies."""
    if not trusted_proxies:
        return False
    if isinstance(trusted_proxies, int):
        return True  # N proxies in front: every peer is the nearest of them
    remote = _parse_ip(meta.get("REMOTE_ADDR", "") or "")
    return remote is not None and _trusted(remote, _networks(tuple(trusted_proxies)))


def get_client_ip(meta: Mapping[str, str], trusted_proxies: int | Sequence[str] = 0) -> str:
    remote = _parse_ip(meta.get("REMOTE_ADDR", "") or "") or UNKNOWN
    if not trusted_proxies:
        return remote
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop for hop in forwarded[:4096].split(",") if hop.strip()]
    if isinstance(trusted_proxies, int):
        # REMOTE_ADDR is the last proxy; the other N-1 proxies appended their hop.
        if len(hops) < trusted_proxies:
            return remote
        return _parse_ip(hops[-trusted_proxies]) or remote
    networks = _networks(tuple(trusted_proxies))
    if remote == UNKNOWN or not _trusted(remote, networks):
        return remote
    client = remote
    for hop in reversed(hops):
        ip = _parse_ip(hop)
        if ip is None:
            return client
        client = ip
        if not _trusted(ip, networks):
            return ip
    return client
