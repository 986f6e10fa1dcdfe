"""The whole middleware around a view that answers at once: µs per request, wall time.

Request thread and writer together (each batch of 1,000 is flushed before the clock
stops), the least of 25 batches. It imports `observability` from the current directory,
so it can be run in a checkout of any commit to compare them:

    cd <checkout> && /path/to/.venv/bin/python bench/middleware_bench.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import timeit

sys.path.insert(0, os.getcwd())
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
os.environ.setdefault("BENCH_VARIANT", "ours")
os.environ.setdefault("BENCH_LOG_DIR", tempfile.mkdtemp(prefix="bench-middleware-"))

import django

django.setup()

from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from observability import flush_logs  # noqa: E402
from observability.middleware import RequestLoggingMiddleware  # noqa: E402

AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
REQUEST = RequestFactory().get("/api/v1/ping/", HTTP_USER_AGENT=AGENT)
RESPONSE = HttpResponse(b'{"ok":true}', content_type="application/json")
MIDDLEWARE = RequestLoggingMiddleware(lambda request: RESPONSE)


def batch() -> None:
    for _ in range(1000):
        MIDDLEWARE(REQUEST)
    flush_logs()


if __name__ == "__main__":
    best = min(timeit.repeat(batch, number=1, repeat=25))
    print(f"{best * 1000:.1f} µs/request (request thread + writer, least of 25 x 1,000)")
