"""Flood control's limits over many sources, shared by every worker and host.

Flood control's keys (observability.guard.flood) give each client FLOOD_LIMIT lines per event type
and window in each process: a botnet of ten thousand addresses, or one attacker rotating
through a network, would still write ten thousand times that and rotate the security
history away. So a record that its key would write must also find room in two budgets per
window of FLOOD_WINDOW seconds, counted in a cache every worker shares (FLOOD_CACHE):

- its client's network (FLOOD_IPV4_NETWORK_PREFIX, a /24; FLOOD_IPV6_NETWORK_PREFIX, a /64):
  FLOOD_NETWORK_LIMIT lines of security records, whatever their event type;
- every guarded record in all: FLOOD_GLOBAL_LIMIT lines.

A record refused by one is counted, never dropped: its count goes to one summary per event
type (or call site) and network (`from 203.0.113.0/24`) or, past the global budget, per event
type for all clients (`from *`), so the counts stay exact. Each line written takes a slot
of its own in the cache (observability.shared.slots: exact over concurrent workers); once a budget
is spent, a process knows it and spends no cache call until the window ends.

FLOOD_CACHE None counts in this process only (the budgets are then per worker). A cache
that fails costs the budgets, never the record: it is written, and stderr says so at most
once a minute. On an event loop (a database may not be called there) and inside a request's
atomic block on the database cache (a slot inserted there would hold its lock, or vanish,
with the request's transaction) the cache is called from a helper thread with its own
connection, waiting at most CALL_TIMEOUT (observability.shared.slots.placement_of decides).
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction

from observability.conf import obs_settings
from observability.output.writer import report
from observability.shared.slots import Slots, placement_of

#: Where a record's budgets were spent: the summary's client ("*": every client).
EVERY_CLIENT = "*"
CALL_TIMEOUT = 1.0
REPORT_INTERVAL = 60.0
_networks = Slots("flood-network")
_everything = Slots("flood-global")
local_cache = LocMemCache("observability-flood", {"MAX_ENTRIES": 100_000})
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_reported = -REPORT_INTERVAL


def network_of(client: str) -> str | None:
    """The network a client source (`203.0.113.7`, `2001:db8:1:2::/64`) belongs to; None for
    no client (its records share one network, "-")."""
    try:
        network = ipaddress.ip_network(client, strict=False)
    except ValueError:
        return None
    settings = obs_settings
    if isinstance(network, ipaddress.IPv4Network):
        prefix = settings.FLOOD_IPV4_NETWORK_PREFIX
    else:
        prefix = settings.FLOOD_IPV6_NETWORK_PREFIX
    if prefix >= network.prefixlen:
        return str(network)
    return str(network.supernet(new_prefix=prefix))


def shared_cache() -> BaseCache:
    """FLOOD_CACHE, or this process's own table when it is None."""
    alias = obs_settings.FLOOD_CACHE
    return local_cache if alias is None else caches[alias]


def refusal(client: str | None) -> str | None:
    """None when a record of this client (a network's source; None for a record keyed by
    call site) may be written; else the client its count goes to: its network, or "*"."""
    settings = obs_settings
    if not settings.FLOOD_NETWORK_LIMIT and not settings.FLOOD_GLOBAL_LIMIT:
        return None
    network = None if client is None else (network_of(client) or "-")
    try:
        placement, using = placement_of(shared_cache())
        if placement == "helper":
            return _helper().submit(_refusal, network).result(CALL_TIMEOUT)
        if placement == "savepoint":
            with transaction.atomic(using=using):
                return _refusal(network)
        return _refusal(network)
    except Exception as exc:  # the budgets are lost, never the record
        _lose(type(exc).__name__)
        return None


def _refusal(network: str | None) -> str | None:
    settings = obs_settings
    cache = shared_cache()
    length = settings.FLOOD_WINDOW
    limit = settings.FLOOD_NETWORK_LIMIT
    if network is not None and limit and not _networks.take(cache, network, limit, length):
        return network
    limit = settings.FLOOD_GLOBAL_LIMIT
    if limit and not _everything.take(cache, EVERY_CLIENT, limit, length):
        return EVERY_CLIENT
    return None


def _helper() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(1, thread_name_prefix="observability-flood")
        return _executor


def _lose(cause: str) -> None:
    global _reported
    now = time.monotonic()
    if now - _reported >= REPORT_INTERVAL:
        _reported = now
        report(
            f"flood control's shared budgets skipped: cache {obs_settings.FLOOD_CACHE!r} "
            f"failed ({cause}); records are written as their keys allow"
        )


def forget() -> None:
    """Forget the counts of this process (tests; FLOOD_CACHE None)."""
    local_cache.clear()
    _networks.forget()
    _everything.forget()


def _after_fork_in_child() -> None:
    global _executor, _executor_lock
    _executor, _executor_lock = None, threading.Lock()  # the parent's thread is not ours
    local_cache.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
