"""bench/settings.py ("ours") with the cache the reuse check uses (BENCH_CACHE: locmem or db)."""

import os
import tempfile

from bench.settings import *  # noqa: F403 - the benchmark's settings, plus a cache

if os.environ.get("BENCH_CACHE") == "db":
    # This project's SQLite options (config/settings.py) and its request_ids cache's size.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tempfile.mkdtemp(prefix="bench-reuse-"), "bench.sqlite3"),
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "bench_request_ids",
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 10**6},
        }
    }
