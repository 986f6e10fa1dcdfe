"""Generate ~100 MB of log lines (text) and time logtrace on them; prints a table and one JSON line.

    .venv/bin/python bench/logtrace_bench.py          # BENCH_LOG_MB=100 by default

Each case runs the whole command (the `logtrace` console script, Python starting and the
settings read included: the start-up case is that alone) five times and keeps the median;
"trace one ID (manage.py)" is the same story through `manage.py logtrace` (Django's whole
set-up). `trace_in_process`
and `list_in_process` time the engine's calls alone. A case the command does not know (an
option it lacks) is shown as n/a.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUTES = ("api/v1/payments/", "api/v1/payments/<int:pk>/", "api/v1/plans/")


def generate(directory: Path, megabytes: int) -> str:
    """Write the files (live + 5 backups each); return a request ID from the middle."""
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
                failed = n % 200 == 199  # 0.5 % fail
                status = 500 if failed else 201
                word, level = ("failed", "ERROR") if failed else ("completed", "INFO")
                lines.append(
                    f"{stamp} INFO [billing.api] API Request started - User: user{n % 97} (ID: {n % 97}), IP: 10.0.0.1, Method: POST, Path: /api/v1/payments/ | {ctx} user_agent=bench"
                )
                lines.append(
                    f"{stamp} {level} [billing.api] API Request {word} - Status: {status}, Duration: 0.020 seconds | {ctx} status={status} duration=0.02 response_size=206 route={ROUTES[n % 3]} view=bench"
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


CONSOLE = [str(Path(sys.executable).parent / "logtrace")]
MANAGE = [sys.executable, "manage.py", "logtrace"]


def command(
    directory: Path, args: list[str], env: dict[str, str], program: list[str] = CONSOLE
) -> float | None:
    """The median of five runs of the whole command, in seconds; None if it refused the options."""
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        done = subprocess.run(
            [*program, *args, "--dir", str(directory)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=300,
        )
        elapsed = time.perf_counter() - started
        if done.returncode == 2:  # an option this version does not have
            return None
        if done.returncode not in (0, 1):  # 1: nothing matched (the start-up case)
            raise SystemExit(f"logtrace {' '.join(args)} failed: {done.stderr.decode()[-500:]}")
        runs.append(elapsed)
    return round(statistics.median(runs), 3)


def main() -> None:
    megabytes = int(os.environ.get("BENCH_LOG_MB", "100"))
    directory = Path(tempfile.mkdtemp(prefix="logtrace-bench-"))
    try:
        rid = generate(directory, megabytes)
        total = sum(p.stat().st_size for p in directory.iterdir())
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "LOG_CONSOLE": "0",
            "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key-0123456789abcdef"),
        }
        cases = {
            "trace one ID": [rid],
            "list, last 50 (no filter)": ["--limit", "50"],
            "list, --user 5 --limit 20": ["--user", "5", "--limit", "20"],
            "list, --errors": ["--errors", "--limit", "50"],
            "list, --route": ["--route", ROUTES[1], "--limit", "50"],
            "list, --status 5xx": ["--status", "5xx", "--limit", "50"],
        }
        timings: dict[str, float | None] = {}
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        empty = Path(tempfile.mkdtemp(prefix="logtrace-bench-empty-"))
        timings["start-up (an empty directory)"] = command(empty, ["no-such-id"], env)
        empty.rmdir()
        for label, args in cases.items():
            timings[label] = command(directory, args, env)
        timings["trace one ID (manage.py)"] = command(directory, [rid], env, MANAGE)
        max_rss = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        sys.path.insert(0, str(ROOT))
        os.environ.update({k: v for k, v in env.items() if k not in os.environ})
        import django

        django.setup()
        from observability.logtrace import Filters, list_requests, trace

        started = time.perf_counter()
        _summary, records = trace(directory, rid, Filters())
        timings["trace_in_process"] = round(time.perf_counter() - started, 3)
        assert len(records) == 2, records
        for label, filters in (("no filter", Filters()), ("user 5", Filters(user="5"))):
            started = time.perf_counter()
            found = list_requests(directory, filters, 50)
            timings[f"list_in_process, {label}"] = round(time.perf_counter() - started, 3)
            assert len(found) == 50, len(found)
        print(f"{total / 1024 / 1024:.1f} MB of logs in {directory}")
        print()
        print("| case | median of 5, s |")
        print("| --- | --- |")
        for label, value in timings.items():
            print(f"| {label} | {'n/a' if value is None else f'{value:.3f}'} |")
        print(
            json.dumps(
                {
                    "megabytes": round(total / 1024 / 1024, 1),
                    **timings,
                    "max_rss_mb": round(max_rss / 1024, 1),
                }
            )
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
