"""Counts every worker and host share: at most `limit` slots per key and fixed window.

Each counted thing takes a slot of its own with `cache.add()` (an INSERT on the database
cache's primary key, Redis `SET NX`: atomic), so a limit holds in total however requests
are spread over workers, concurrent ones included (a read-then-write count would let racing
workers overwrite each other). A process keeps, per key and window, the first slot it may
find free, so a key past its limit costs no cache call at all in that process; a process
that starts later finds the first free slot by a binary search (slots are taken in order).
Keys are keyed hashes (observability.tracing.keyed), never the client's text.
"""

from __future__ import annotations

import asyncio
import math
import os
import time

from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router

from observability.memo import Memo
from observability.tracing.keyed import keyed_digest

#: (key, window) pairs whose next free slot a process remembers; past it, it forgets all.
MAX_HINTS = 4096
_every: list[Slots] = []


class NotStoredError(Exception):
    """The cache neither stored the entry (a slot, a seen ID) nor holds one: the database
    cache's add() answers False when its own write fails (a lock, for one)."""


class Slots:
    """Slots of one purpose (a quota, a rate) in a shared cache."""

    def __init__(self, purpose: str) -> None:
        self.purpose = purpose
        self._hints: Memo[tuple[str, int], int] = Memo(MAX_HINTS)
        _every.append(self)

    def take(self, cache: BaseCache, key: str, limit: int, length: float) -> bool:
        """Take one of `key`'s `limit` slots in this window of `length` seconds; False
        when none is left."""
        now = time.time()
        window = int(now // length)
        hint = (key, window)
        slot = self._hints.get(hint, 0)
        if slot >= limit:
            return False
        digest = keyed_digest(self.purpose, f"{key} {window}", 16).hex()
        base = f"observability:{self.purpose}:{digest}"
        timeout = math.ceil((window + 1) * length - now) + 1  # gone soon after the window
        while slot < limit:
            key_of_slot = f"{base}:{slot}"
            if cache.add(key_of_slot, 1, timeout):
                self._remember(hint, slot + 1)
                return True
            if cache.get(key_of_slot) is None:
                # The database cache answers False when its own write failed (a lock):
                # nothing was counted, and nothing is known to be full.
                raise NotStoredError(key_of_slot)
            slot = self._first_free(cache, base, slot + 1, limit)
        self._remember(hint, limit)
        return False

    @staticmethod
    def retry_after(length: float) -> int:
        """Seconds until the current window ends (a Retry-After)."""
        now = time.time()
        return max(1, math.ceil((int(now // length) + 1) * length - now))

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
        self._hints.keep(hint, slot)  # many keys: start again, the cache holds every count

    def forget(self) -> None:
        """Forget this process's hints (tests; a forked child starts from the cache)."""
        self._hints.reset()


def forget_all() -> None:
    for slots in _every:
        slots.forget()


os.register_at_fork(after_in_child=forget_all)


def placement_of(cache: BaseCache) -> tuple[str, str | None]:
    """Where the check may run: "here", "savepoint" (here, in one, on the database named
    second) or "helper" (this process's helper thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "helper", None
    if isinstance(cache, DatabaseCache):
        using = router.db_for_write(cache.cache_model_class)
        blocks = connections[using].atomic_blocks
        if blocks:
            # Django marks the blocks a TestCase opens around each test: their rollback is
            # the test's end, not a request's failure.
            if all(getattr(block, "_from_testcase", False) for block in blocks):
                return "savepoint", using
            return "helper", None
    return "here", None
