"""One in-process run: N requests through Django's WSGI handler; prints one JSON line."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
#: The POST (BENCH_METHOD=POST): a serializer validated and one line logged by the view.
BODY = b'{"amount": "19.99", "currency": "USD", "description": "Pro plan"}'


def environ(path: str, n: int = 0, *, body: bytes = b"", **extra: str) -> dict:
    """A WSGI environ for a GET (or what `extra` makes it: REQUEST_METHOD, headers...)."""
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "bench/1.0",
        **extra,
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    import django
    from django.core.handlers.wsgi import WSGIHandler

    django.setup()
    requests = int(os.environ.get("BENCH_REQUESTS", "5000"))
    warmup = int(os.environ.get("BENCH_WARMUP", "500"))
    handler = WSGIHandler()

    def start_response(status, headers, exc_info=None):
        return None

    post = os.environ.get("BENCH_METHOD", "GET") == "POST"

    def one(n: int) -> dict:
        if not post:
            return environ("/api/v1/ping/", n)
        return environ(
            "/api/v1/orders/",
            n,
            body=BODY,
            REQUEST_METHOD="POST",
            CONTENT_TYPE="application/json",
            CONTENT_LENGTH=str(len(BODY)),
        )

    def run(count: int) -> None:
        for n in range(count):
            response = handler(one(n), start_response)
            for _chunk in response:
                pass
            response.close()

    def drain() -> None:
        try:
            from observability import flush_logs
        except ImportError:
            return
        flush_logs(30)

    run(warmup)
    drain()
    log_dir = Path(os.environ["BENCH_LOG_DIR"])
    before = {p: p.stat().st_size for p in log_dir.glob("*.log")}
    lines_before = sum(p.read_bytes().count(b"\n") for p in log_dir.glob("*.log"))
    started, cpu_started = time.perf_counter(), time.process_time()
    run(requests)
    drain()  # the listener's writing is part of the cost
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started  # every thread's CPU: less noisy on a shared VM
    written = sum(p.stat().st_size - before.get(p, 0) for p in log_dir.glob("*.log"))
    lines = sum(p.read_bytes().count(b"\n") for p in log_dir.glob("*.log")) - lines_before
    result = {
        "us_per_request": elapsed / requests * 1e6,
        "cpu_us_per_request": cpu / requests * 1e6,
        "lines_per_request": lines / requests,
        "bytes_per_request": written / requests,
        "rss_kb": rss_kb(),
    }
    if os.environ.get("BENCH_RSS_CURVE"):
        result["rss_after_1k"] = result["rss_kb"]
        run(int(os.environ["BENCH_RSS_CURVE"]))
        drain()
        result["rss_after_more"] = rss_kb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
