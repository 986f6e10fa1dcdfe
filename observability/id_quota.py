"""How many incoming request IDs one client may have remembered: SEEN_IDS_PER_CLIENT.

The memory of the IDs seen (observability.seen_ids) is a bounded cache: past its bound
(the database cache's MAX_ENTRIES, Redis' maxmemory) it deletes entries, whoever's they
are. One client sending ever new IDs would push a victim's ID out, and a later reuse of it
would go unflagged. So each client (its address as TRUSTED_PROXIES reads it, parsed: an
IPv4 address, an IPv6 /64) may add at most SEEN_IDS_PER_CLIENT IDs per window of
SEEN_IDS_WINDOW seconds. Past it, its IDs are still looked up (reusing a victim's ID is
still flagged) but no longer remembered, and a `request_id_quota_exceeded` event says so.

The counts live in a cache of their own (SEEN_IDS_QUOTA_CACHE), shared by every worker and
host, so that filling the seen IDs cannot push the counts out, nor the counts the IDs. Each
remembered ID takes a slot of its own with `cache.add()` (atomic on the database cache,
Redis and memcached), so the quota holds in total over every worker, concurrent requests
included. A process keeps, per client and window, the first slot it may find free, so a
client past its quota costs no cache call at all in that process; a process that starts
later finds the first free slot by a binary search (slots are taken in order).
"""

from __future__ import annotations

import math
import os
import time

from django.core.cache.backends.base import BaseCache

from observability.conf import obs_settings
from observability.keyed import keyed_digest

KEY_PREFIX = "observability:id-quota:"
#: (client, window) pairs whose next free slot a process remembers; past it, it forgets all.
MAX_HINTS = 4096


class IdQuota:
    """Slots of SEEN_IDS_PER_CLIENT per client and window, in a shared cache."""

    def __init__(self) -> None:
        self._hints: dict[tuple[str, int], int] = {}

    def take(self, cache: BaseCache, client: str) -> bool:
        """Take one of the client's slots in this window; False when it has none left."""
        settings = obs_settings
        limit = settings.SEEN_IDS_PER_CLIENT
        length = settings.SEEN_IDS_WINDOW
        now = time.time()
        window = int(now // length)
        hint = (client, window)
        slot = self._hints.get(hint, 0)
        if slot >= limit:
            return False
        base = KEY_PREFIX + keyed_digest("id-quota", f"{client} {window}", 16).hex()
        timeout = math.ceil((window + 1) * length - now) + 1  # gone soon after the window
        while slot < limit:
            if cache.add(f"{base}:{slot}", 1, timeout):
                self._remember(hint, slot + 1)
                return True
            slot = self._first_free(cache, base, slot + 1, limit)
        self._remember(hint, limit)
        return False

    @staticmethod
    def _first_free(cache: BaseCache, base: str, low: int, high: int) -> int:
        """The first slot from `low` that is not taken, if slots are taken in order."""
        while low < high:
            middle = (low + high) // 2
            if cache.get(f"{base}:{middle}") is None:
                high = middle
            else:
                low = middle + 1
        return low

    def _remember(self, hint: tuple[str, int], slot: int) -> None:
        hints = self._hints
        if len(hints) >= MAX_HINTS and hint not in hints:
            hints.clear()  # many clients: the cache still holds every count
        hints[hint] = slot

    def forget(self) -> None:
        """Forget this process's hints (tests; a forked child starts from the cache)."""
        self._hints = {}


id_quota = IdQuota()
os.register_at_fork(after_in_child=id_quota.forget)
