"""A count that holds across every worker process: one cache key a slot, taken with add().

Each attempt takes a *slot*, a key of its own (``<bucket>:<window>:<n>``), with
``cache.add()``: atomic on the database cache (an INSERT on its primary key) and on Redis
(SET NX), so two workers can never take the same slot and the limit holds in total, not
per worker, even for concurrent requests. Windows are fixed.
"""

from __future__ import annotations

import math

from django.core.cache.backends.base import BaseCache

#: Slots read per cache query; every sane rate fits in one read.
CHUNK = 256


class SlotWindow:
    """At most `limit` slots per fixed window of `duration` seconds, in a shared cache."""

    def __init__(
        self, cache: BaseCache, bucket: str, limit: int, duration: int, now: float
    ) -> None:
        self.cache = cache
        self.limit = limit
        window = int(now // duration)
        self.ends = (window + 1) * duration
        self.prefix = f"{bucket}:{window}"
        self.timeout = math.ceil(self.ends - now) + 1  # gone soon after the window

    def _keys(self, start: int) -> list[str]:
        return [f"{self.prefix}:{n}" for n in range(start, min(start + CHUNK, self.limit))]

    def free(self, start: int = 0) -> tuple[int, list[str]]:
        """(where the chunk starts, its free slots) of the first chunk with a free slot."""
        for first in range(start, self.limit, CHUNK):
            keys = self._keys(first)
            taken = self.cache.get_many(keys)
            free = [key for key in keys if key not in taken]
            if free:
                return first, free
        return self.limit, []

    def claim(self, first: int, free: list[str]) -> str | None:
        """Take one of `free` (from free()), or a later one if racers took them; None: full."""
        while free:
            for key in free:
                if self.cache.add(key, 1, self.timeout):
                    return key
            first, free = self.free(first + CHUNK)
        return None

    def release(self, key: str) -> None:
        self.cache.delete(key)

    def reset(self) -> None:
        for first in range(0, self.limit, CHUNK):
            taken = self.cache.get_many(self._keys(first))
            if not taken:
                return
            self.cache.delete_many(list(taken))

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.ends - now))
