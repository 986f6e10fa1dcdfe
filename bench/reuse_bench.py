"""What the reuse check of incoming request IDs costs a request: µs per request, least batch.

Requests through the whole middleware, each batch 1,000 new request objects (flushed before
the clock stops), least of 15 batches, for: no incoming ID (nothing is looked up), distinct
incoming IDs with a LocMemCache, distinct incoming IDs with the database cache on SQLite as
this project configures it. Run in a checkout, like bench/middleware_bench.py:

    cd <checkout> && /path/to/.venv/bin/python bench/reuse_bench.py
"""

from __future__ import annotations

import os
import subprocess
import sys

VARIANTS = {
    "none": "without an incoming ID",
    "locmem": "distinct incoming IDs, LocMemCache",
    "db": "distinct incoming IDs, database cache (SQLite WAL, 10,000 entries)",
}


def measure(variant: str) -> None:
    import tempfile
    import timeit

    sys.path.insert(0, os.getcwd())
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings_reuse"
    os.environ["BENCH_VARIANT"] = "ours"
    os.environ["BENCH_CACHE"] = variant
    os.environ.setdefault("BENCH_LOG_DIR", tempfile.mkdtemp(prefix="bench-reuse-"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.http import HttpResponse
    from django.test import RequestFactory

    from observability import flush_logs
    from observability.middleware import RequestLoggingMiddleware

    if variant == "db":
        call_command("createcachetable", verbosity=0)
    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
    factory = RequestFactory()
    response = HttpResponse(b'{"ok":true}', content_type="application/json")
    middleware = RequestLoggingMiddleware(lambda request: response)
    ids = iter(range(10**9))

    def request():
        if variant == "none":
            return factory.get("/api/v1/ping/", HTTP_USER_AGENT=agent)
        rid = f"gw-{next(ids):08d}-c0ffee"
        return factory.get("/api/v1/ping/", HTTP_USER_AGENT=agent, HTTP_X_REQUEST_ID=rid)

    batches = [[request() for _ in range(1000)] for _ in range(15)]

    def run() -> None:
        for each in batches.pop():
            middleware(each)
        flush_logs()

    best = min(timeit.repeat(run, number=1, repeat=len(batches)))
    print(f"| {VARIANTS[variant]} | {best * 1000:.0f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        measure(sys.argv[1])
    else:
        print("| requests | µs/request |\n| --- | --- |", flush=True)
        for name in VARIANTS:  # one process each: one cache, one database
            subprocess.run([sys.executable, __file__, name], check=True)
