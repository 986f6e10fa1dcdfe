"""Keyed hashes of values a client chose, with keys derived from the deployment's SECRET_KEY.

A decision or a key computed from a client's value alone, the client can compute offline:
which request IDs sampling drops, where an ID lands in the cache. Keyed with a secret, every
worker and every host with the same SECRET_KEY still agrees, and no client can predict it.

One key per purpose, derived by Django's `salted_hmac` (HMAC-SHA256 under a salt naming the
purpose), so no two uses share a key and none exposes SECRET_KEY. Hashing is BLAKE2b in keyed
mode: its key is set up once, and each value costs one copy and one update (C calls).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.signals import setting_changed
from django.utils.crypto import salted_hmac

_hashers: dict[tuple[str, int], hashlib.blake2b] = {}


def keyed_digest(purpose: str, value: str, size: int) -> bytes:
    """`size` bytes of BLAKE2b of `value`, keyed by this deployment's key for `purpose`."""
    base = _hashers.get((purpose, size))
    if base is None:
        key = salted_hmac(f"observability.tracing.keyed.{purpose}", "", algorithm="sha256").digest()
        base = _hashers[(purpose, size)] = hashlib.blake2b(key=key, digest_size=size)
    hasher = base.copy()
    hasher.update(value.encode("utf-8", "replace"))
    return hasher.digest()


def _forget_keys(*, setting: str, **kwargs: Any) -> None:
    if setting == "SECRET_KEY":
        _hashers.clear()


setting_changed.connect(_forget_keys)
