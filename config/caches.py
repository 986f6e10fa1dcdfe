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


def shared_caches(cache_url: str) -> dict[str, dict[str, Any]]:
    """CACHES: on Redis at `cache_url`, or in the database when it is ""."""
    return {
        "default": (
            {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": cache_url}
            if cache_url
            else {
                "BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": "billing_cache",
                # Past MAX_ENTRIES rows (Django's default: 300) each write deletes a third of
                # the table, live login counts included: a busy minute would hand attackers
                # their budget back. Each login attempt holds two rows for at most its window.
                "OPTIONS": {"MAX_ENTRIES": 100_000},
            }
        ),
        # Incoming request IDs already seen (OBSERVABILITY['SEEN_IDS_CACHE']): a table of
        # their own, so a client sending many IDs pushes out only other IDs (a full database
        # cache deletes a third of its rows), never the login throttles. 10,000 IDs is an hour
        # of them at ~3 requests/s carrying one (each write counts the table's rows); Redis
        # beyond that, with short socket timeouts: a hung Redis costs the check, not a hung
        # request.
        "request_ids": (
            {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": cache_url,
                "KEY_PREFIX": "request-ids",
                "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
            }
            if cache_url
            else {
                "BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": "billing_request_ids",
                "OPTIONS": {"MAX_ENTRIES": 10_000},
            }
        ),
        # How many IDs each client has had remembered this window (OBSERVABILITY
        # ['SEEN_IDS_PER_CLIENT']): a slot a row, in a table of their own, so that filling
        # the seen IDs never pushes the counts out (nor the counts the IDs).
        "request_id_quotas": (
            {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": cache_url,
                "KEY_PREFIX": "request-id-quotas",
                "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
            }
            if cache_url
            else {
                "BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": "billing_request_id_quotas",
                "OPTIONS": {"MAX_ENTRIES": 20_000},
            }
        ),
    }
