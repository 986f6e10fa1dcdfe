"""The caches every worker process shares: login throttles, seen request IDs, their quotas.

Login throttles and the tracing layer's shared memory (request IDs already seen) must be
the same in every gunicorn/uvicorn worker, and on every host: a per-process cache would
let a client spread its attempts over the workers. The database cache works with no other
service (its table is made by `manage.py createcachetable`, which `make migrate` runs);
set CACHE_URL=redis://127.0.0.1:6379/1 to use Redis instead.
https://docs.djangoproject.com/en/5.2/topics/cache/#database-caching
"""

from __future__ import annotations

from typing import Any

REDIS = "django.core.cache.backends.redis.RedisCache"
DATABASE = "django.core.cache.backends.db.DatabaseCache"


def shared_caches(cache_url: str) -> dict[str, dict[str, Any]]:
    """CACHES: on Redis at `cache_url`, or in the database when it is ""."""
    return {
        # In the database: past MAX_ENTRIES rows (Django's default: 300) each write deletes a
        # third of the table, live login counts included: a busy minute would hand attackers
        # their budget back. Each login attempt holds two rows for at most its window.
        "default": (
            {"BACKEND": REDIS, "LOCATION": cache_url}
            if cache_url
            else {
                "BACKEND": DATABASE,
                "LOCATION": "billing_cache",
                "OPTIONS": {"MAX_ENTRIES": 100_000},
            }
        ),
        # Incoming request IDs already seen (OBSERVABILITY['SEEN_IDS_CACHE']): a table of
        # their own, so a client sending many IDs pushes out only other IDs (a full database
        # cache deletes a third of its rows), never the login throttles. 10,000 IDs is an hour
        # of them at ~3 requests/s carrying one (each write counts the table's rows); Redis
        # beyond that.
        "request_ids": _own_cache(
            cache_url, prefix="request-ids", table="billing_request_ids", max_entries=10_000
        ),
        # How many IDs each client has had remembered this window (OBSERVABILITY
        # ['SEEN_IDS_PER_CLIENT']): a slot a row, in a table of their own, so that filling
        # the seen IDs never pushes the counts out (nor the counts the IDs).
        "request_id_quotas": _own_cache(
            cache_url,
            prefix="request-id-quotas",
            table="billing_request_id_quotas",
            max_entries=20_000,
        ),
    }


def _own_cache(cache_url: str, *, prefix: str, table: str, max_entries: int) -> dict[str, Any]:
    """A cache of its own: a key prefix on Redis, with short socket timeouts (a hung Redis
    costs the check, not a hung request), or a database table of its own."""
    if cache_url:
        return {
            "BACKEND": REDIS,
            "LOCATION": cache_url,
            "KEY_PREFIX": prefix,
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
        }
    return {"BACKEND": DATABASE, "LOCATION": table, "OPTIONS": {"MAX_ENTRIES": max_entries}}
