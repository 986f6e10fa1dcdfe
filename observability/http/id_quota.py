"""How many incoming request IDs one client may have remembered: SEEN_IDS_PER_CLIENT.

The memory of the IDs seen (observability.http.seen_ids) is a bounded cache: past its bound
(the database cache's MAX_ENTRIES, Redis' maxmemory) it deletes entries, whoever's they
are. One client sending ever new IDs would push a victim's ID out, and a later reuse of it
would go unflagged. So each client (its address as TRUSTED_PROXIES reads it, parsed: an
IPv4 address, an IPv6 /64) may add at most SEEN_IDS_PER_CLIENT IDs per window of
SEEN_IDS_WINDOW seconds. Past it, its IDs are still looked up (reusing a victim's ID is
still flagged) but no longer remembered, and a `request_id_quota_exceeded` event says so.

The counts are slots (observability.shared.slots) in a cache of their own (SEEN_IDS_QUOTA_CACHE),
shared by every worker and host, so that filling the seen IDs cannot push the counts out,
nor the counts the IDs.
"""

from __future__ import annotations

from django.core.cache.backends.base import BaseCache

from observability.conf import obs_settings
from observability.shared.slots import Slots


class IdQuota:
    """SEEN_IDS_PER_CLIENT slots per client and window of SEEN_IDS_WINDOW."""

    def __init__(self) -> None:
        self.slots = Slots("id-quota")

    def take(self, cache: BaseCache, client: str) -> bool:
        """Take one of the client's slots in this window; False when it has none left."""
        settings = obs_settings
        limit = settings.SEEN_IDS_PER_CLIENT
        return limit is None or self.slots.take(cache, client, limit, settings.SEEN_IDS_WINDOW)

    def forget(self) -> None:
        self.slots.forget()


id_quota = IdQuota()
