"""RSS of one process over 1,000,000 requests through the middleware (make bench: memory).

Every request has a user agent and a path of its own (the worst case for the remembered
masking and rendering: each is new), and the writer writes real files; RSS is read from
/proc after 1k, 10k, 100k, 500k and 1M requests. `--hostile`: each path and agent is
also long and full of characters that must be escaped (controls, U+2028, "|", accents).

Run: .venv/bin/python bench/memory_bench.py [requests] [--hostile]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("BENCH_VARIANT", "ours")
os.environ.setdefault("BENCH_LOG_DIR", tempfile.mkdtemp(prefix="bench-memory-"))

import django

django.setup()

from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from observability import flush_logs  # noqa: E402
from observability.middleware import RequestLoggingMiddleware  # noqa: E402

RESPONSE = HttpResponse(b'{"ok":true}', content_type="application/json")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    args = [arg for arg in sys.argv[1:] if arg != "--hostile"]
    hostile = "--hostile" in sys.argv
    total = int(args[0]) if args else 1_000_000
    marks = [m for m in (1_000, 10_000, 100_000, 500_000, 1_000_000) if m <= total]
    middleware = RequestLoggingMiddleware(lambda request: RESPONSE)
    factory = RequestFactory()
    curve: dict[str, float] = {}
    for n in range(1, total + 1):
        if hostile:
            path = f"/api/v1/{n}/" + "%1B%E2%80%A8%C3%A9|x" * 60
            agent = f"client/{n} " + "\x1b[31m|\u2028é " * 30
        else:
            path, agent = f"/api/v1/payments/{n}/", f"client/{n} (bench)"
        request = factory.get(path, HTTP_USER_AGENT=agent)
        middleware(request)
        if n % 1000 == 0:
            flush_logs()  # the queue is bounded anyway; this keeps the files current
        if n in marks:
            curve[f"{n:,}"] = round(rss_mb(), 1)
    print(" | ".join(f"{k}: {v} MB" for k, v in curve.items()))
    print(json.dumps(curve))


if __name__ == "__main__":
    main()
