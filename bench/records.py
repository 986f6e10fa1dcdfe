"""Cost of one record on the request thread: our queued handler vs a synchronous file write."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("BENCH_VARIANT", "ours")


def main() -> None:
    import django

    django.setup()
    from observability import flush_logs, request_context
    from observability.filters import RedactionFilter, RequestContextFilter
    from observability.formatters import ApiFormatter
    from observability.handlers import QueuedFileHandler

    count = int(os.environ.get("BENCH_RECORDS", "20000"))
    directory = Path(tempfile.mkdtemp())
    from observability.output import writer as writer_module

    results = {}
    for name in ("enqueue", "queued", "sync"):
        logger = logging.getLogger(f"bench.records.{name}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        # "enqueue": the request thread's share alone (listener held back while timing);
        # "queued": the same handler with its listener running (all the process's CPU).
        paused = name == "enqueue"
        writer_module.WAKE_AT, writer_module.IDLE_WAIT = (10**9, 3600.0) if paused else (256, 0.05)
        writer_module.writer.maxsize = 10**6
        if name in ("enqueue", "queued"):
            handler = QueuedFileHandler(
                str(directory / f"{name}.log"), maxBytes=10 << 20, backupCount=5
            )
        else:
            handler = logging.handlers.RotatingFileHandler(
                directory / "s.log", maxBytes=10 << 20, backupCount=5
            )
        handler.setFormatter(ApiFormatter())
        handler.addFilter(RequestContextFilter())
        handler.addFilter(RedactionFilter())
        logger.addHandler(handler)
        with request_context(request_id="bench-1", ip="127.0.0.1", method="GET", path="/x/"):
            for _ in range(500):
                logger.info("warm up %s", 1)
            flush_logs(30)
            best = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                for _n in range(count // 5):
                    logger.info(
                        "API Request completed - Status: %s, Duration: %.3f seconds",
                        200,
                        0.001,
                        extra={"status": 200, "duration": 0.001, "response_size": 11},
                    )
                best = min(best, (time.perf_counter() - started) / (count // 5) * 1e6)
                flush_logs(30)
        results[name] = best
    print(json.dumps(results))


if __name__ == "__main__":
    main()
