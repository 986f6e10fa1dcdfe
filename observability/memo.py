"""One bounded memo for every per-process table of answers the hot path looks up.

A `Memo` is a dict, so a lookup is dict's own `get` (in C, nothing added on the hot path);
an answer goes in through `keep()`, which holds the table to its `limit`: full, it starts
again from its fixed entries, so a flood of new keys (every request's IDs, hostile texts)
costs one insert each and never grows the table. The other policy, least recently used,
is `functools.lru_cache` (a function's own answers): both are bounded, neither is
hand-written twice.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V], Generic[K, V]):
    """At most `limit` entries (and the `fixed` ones, which survive a reset)."""

    __slots__ = ("fixed", "limit")

    def __init__(self, limit: int, fixed: dict[K, V] | None = None) -> None:
        super().__init__(fixed or {})
        self.limit = limit
        self.fixed = dict(fixed or {})

    def keep(self, key: K, value: V) -> V:
        """Remember `value` for `key` (starting again when full); return it."""
        if len(self) >= self.limit and key not in self:
            self.reset()
        self[key] = value
        return value

    def reset(self) -> None:
        """Back to the fixed entries (a setting changed, a test, a forked child)."""
        self.clear()
        self.update(self.fixed)
