"""Generate ~100 MB of log lines (text) and time logtrace on them; prints one JSON line."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generate(directory: Path, megabytes: int) -> str:
    target = megabytes * 1024 * 1024
    per_file = {
        "billing_api_requests.log": 0.45,
        "billing_api.log": 0.40,
        "billing_api_security.log": 0.10,
        "billing_api_errors.log": 0.05,
    }
    middle = None
    for name, share in per_file.items():
        size = 0
        part = 0
        lines: list[str] = []
        limit = int(target * share)
        n = 0
        while size < limit:
            rid = str(uuid.uuid4())
            if middle is None and name == "billing_api_requests.log" and size > limit // 2:
                middle = rid
            ms = n % 1000
            stamp = f"2026-11-26 {(n // 3600000) % 24:02d}:{(n // 60000) % 60:02d}:{(n // 1000) % 60:02d},{ms:03d}"
            ctx = f"request_id={rid} user_id={n % 97} username=user{n % 97} ip=10.0.{n % 7}.{n % 200} method=POST path=/api/v1/payments/"
            if name == "billing_api_requests.log":
                lines.append(
                    f"{stamp} INFO [billing.api] API Request started - User: user{n % 97} (ID: {n % 97}), IP: 10.0.0.1, Method: POST, Path: /api/v1/payments/ | {ctx} user_agent=bench"
                )
                lines.append(
                    f"{stamp} INFO [billing.api] API Request completed - Status: 201, Duration: 0.020 seconds | {ctx} status=201 duration=0.02 response_size=206"
                )
            else:
                lines.append(
                    f"{stamp} INFO [billing.events] Billing Event: payment_created - User: 1, Details: {{'payment_id': {n}}} | {ctx} payment_id={n} event_type=payment_created"
                )
            n += 1
            if len(lines) >= 20000:
                text = "\n".join(lines) + "\n"
                size += len(text)
                lines = []
                suffix = f".{5 - part}" if part < 5 and size < limit * 0.9 else ""
                with open(directory / (name + suffix), "a") as handle:
                    handle.write(text)
                if size > limit * (part + 1) / 6:
                    part += 1
    return middle or ""


def main() -> None:
    megabytes = int(os.environ.get("BENCH_LOG_MB", "100"))
    directory = Path(tempfile.mkdtemp(prefix="logtrace-bench-"))
    rid = generate(directory, megabytes)
    total = sum(p.stat().st_size for p in directory.iterdir())
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_CONSOLE": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key-0123456789abcdef"),
    }
    timings = {}
    for label, args in (("trace", [rid]), ("list_user", ["--user", "5", "--limit", "20"])):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            subprocess.run(
                [sys.executable, "manage.py", "logtrace", *args, "--dir", str(directory)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                check=True,
                timeout=300,
            )
            best = min(best, time.perf_counter() - started)
        timings[label] = round(best, 3)
    sys.path.insert(0, str(ROOT))
    from observability.logtrace import Filters, list_requests, trace

    started = time.perf_counter()
    _summary, records = trace(directory, rid, Filters())
    timings["trace_in_process"] = round(time.perf_counter() - started, 3)
    assert len(records) == 2, records
    started = time.perf_counter()
    list_requests(directory, Filters(user="5"), 20)
    timings["list_in_process"] = round(time.perf_counter() - started, 3)
    timings["max_rss_mb"] = round(
        max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024, 1
    )
    print(json.dumps({"megabytes": round(total / 1024 / 1024, 1), **timings}))


if __name__ == "__main__":
    main()
