"""Time the trace viewer's pages on ~100 MB of realistic logs; prints a table and one JSON line.

    .venv/bin/python bench/viewer_bench.py          # BENCH_LOG_MB=100 by default

Generates the five files' worth of lines (requests, general, errors with tracebacks, security)
in the layer's text layout, rotated like the seed's handlers would (live file + numbered
backups), under a temp dir; then renders the pages with Django's test client as a logged-in
staff user, and times the engine's own `list_requests` for comparison.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
# file: (max bytes, backups) as in observability.logconfig.LOG_FILES
FILES = {
    "billing_api_requests.log": (10 * MB, 5),
    "billing_api.log": (10 * MB, 5),
    "billing_api_security.log": (5 * MB, 10),
    "billing_api_errors.log": (5 * MB, 10),
}
USERS = [(n, f"user{n:03d}") for n in range(1, 401)]
PATHS = [
    "/api/v1/payments/",
    "/api/v1/subscriptions/",
    "/api/v1/plans/",
    "/api/v1/reports/revenue/",
]
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
TRACEBACK = (
    "Traceback (most recent call last):\\n"
    '  File "/app/billing/services.py", line 88, in payment_create\\n'
    "    result = gateway.charge(amount=amount, method=method)\\n"
    '  File "/app/billing/gateway.py", line 41, in charge\\n'
    "    raise GatewayTimeout('upstream took too long')\\n"
    "billing.gateway.GatewayTimeout: upstream took too long"
)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S,") + f"{when.microsecond // 1000:03d}"


def generate(directory: Path, megabytes: int) -> dict[str, str]:
    """Write the files; return a few request IDs and users worth looking up."""
    rng = random.Random(16)
    target = megabytes * MB
    lines: dict[str, list[str]] = {name: [] for name in FILES}
    sizes = dict.fromkeys(FILES, 0)
    when = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    picks: dict[str, str] = {}
    n = 0
    while sum(sizes.values()) < target:
        n += 1
        rid = str(uuid.uuid4())
        user_id, username = rng.choice(USERS)
        path = rng.choice(PATHS)
        method = "POST" if path == "/api/v1/payments/" and rng.random() < 0.5 else "GET"
        ip = f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        roll = rng.random()
        status = 500 if roll < 0.005 else 404 if roll < 0.03 else 201 if method == "POST" else 200
        duration = rng.lognormvariate(-3.6, 0.6) + (1.4 if rng.random() < 0.01 else 0)
        start = when
        end = start + timedelta(seconds=duration)
        when += timedelta(milliseconds=rng.randrange(1, 12))
        ctx = f"request_id={rid} user_id={user_id} username={username} ip={ip} method={method} path={path}"
        anon = f"request_id={rid} user_id=- username=- ip={ip} method={method} path={path}"
        out = []
        out.append(
            (
                "billing_api_requests.log",
                f"{stamp(start)} INFO [billing.api] API Request started - User: anonymous (ID: -), "
                f'IP: {ip}, Method: {method}, Path: {path} | {anon} user_agent="{UA}"',
            )
        )
        if method == "POST" and status == 201:
            out.append(
                (
                    "billing_api.log",
                    f"{stamp(start + timedelta(milliseconds=3))} INFO [billing.events] Billing Event: "
                    f"payment_created - User: {user_id}, Details: {{'payment_id': {n}, 'amount': '9.99'}}"
                    f" | {ctx} payment_id={n} amount=9.99 currency=USD event_type=payment_created "
                    "module=events process=4242 threadName=MainThread",
                )
            )
        out.append(
            (
                "billing_api.log",
                f"{stamp(start + timedelta(milliseconds=2))} INFO [billing.views] listing for "
                f"{username} | {ctx} module=views process=4242 threadName=MainThread",
            )
        )
        out.append(
            (
                "billing_api.log",
                f"{stamp(start + timedelta(milliseconds=4))} INFO [billing.performance] "
                f"Performance Metric: db_query - Value: {duration / 3:.4f} seconds | {ctx} "
                f"metric_name=db_query value={duration / 3:.6f} unit=seconds module=events "
                "process=4242 threadName=MainThread",
            )
        )
        if rng.random() < 0.2:
            out.append(
                (
                    "billing_api_security.log",
                    f"{stamp(start + timedelta(milliseconds=1))} INFO [common.jwt_auth] Security Event: "
                    f"token_verified - Severity: info, Details: {{}} | {ctx} event_type=token_verified "
                    "severity=info module=events process=4242 threadName=MainThread",
                )
            )
        word = "failed" if status == 500 else "completed"
        level = "ERROR" if status == 500 else "INFO"
        terminal = (
            f"{stamp(end)} {level} [billing.api] API Request {word} - Status: {status}, "
            f"Duration: {duration:.3f} seconds | {ctx} status={status} duration={duration:.6f} "
            f"response_size=412 route={path.strip('/')} view=bench"
        )
        out.append(("billing_api_requests.log", terminal))
        if status == 500:
            out.append(
                (
                    "billing_api_errors.log",
                    f"{stamp(end)} ERROR [django.request] Internal Server Error: {path} | {ctx} "
                    f"status_code=500 pathname=/app/django/handlers.py lineno=120 | {TRACEBACK}",
                )
            )
            out.append(("billing_api_errors.log", terminal))
            picks.setdefault("failed", rid)
        if duration >= 1.0:
            out.append(
                (
                    "billing_api_requests.log",
                    f"{stamp(end)} WARNING [billing.api] Slow API request detected - Duration: "
                    f"{duration:.3f} seconds (threshold 1.0 seconds) | {ctx} duration={duration:.6f}",
                )
            )
        for name, line in out:
            lines[name].append(line)
            sizes[name] += len(line) + 1
        if n == 5000:
            picks["old"] = rid
    picks["newest"] = rid
    picks["rare_user"] = "user007"
    for name, (max_bytes, backups) in FILES.items():
        _write_rotated(directory, name, lines[name], max_bytes, backups)
    return picks


def _write_rotated(directory: Path, name: str, lines: list[str], max_bytes: int, backups: int):
    """Newest lines in the live file, older ones in .1, .2, ... as rotation would leave them."""
    segments: list[list[str]] = [[]]
    size = 0
    for line in reversed(lines):
        if size + len(line) + 1 > max_bytes and segments[-1]:
            if len(segments) > backups:
                break
            segments.append([])
            size = 0
        segments[-1].append(line)
        size += len(line) + 1
    for number, segment in enumerate(segments):
        suffix = "" if number == 0 else f".{number}"
        with open(directory / f"{name}{suffix}", "w", encoding="utf-8") as handle:
            handle.write("\n".join(reversed(segment)) + "\n")


def timed(call, repeat: int = 5) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    megabytes = int(os.environ.get("BENCH_LOG_MB", "100"))
    work = Path(tempfile.mkdtemp(prefix="viewer-bench-"))
    logs = work / "logs"
    logs.mkdir()
    try:
        started = time.perf_counter()
        picks = generate(logs, megabytes)
        generated = time.perf_counter() - started
        total = sum(p.stat().st_size for p in logs.iterdir()) / MB
        os.environ.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            SECRET_KEY="bench-only-secret-key-0123456789abcdef",
            LOG_BASE_DIR=str(work / "own-logs"),  # the bench's own requests log here
            LOG_CONSOLE="0",
            DATABASE_URL=f"sqlite:///{work / 'bench.sqlite3'}",
        )
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client

        from observability.logtrace import Filters, list_requests

        call_command("migrate", verbosity=0)
        staff = get_user_model().objects.create_user("bench", password="x", is_staff=True)
        settings.LOG_BASE_DIR = str(logs)  # what the viewer reads
        client = Client()
        client.force_login(staff)

        def page(url: str) -> None:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        results = {}
        cases = [
            ("list, last 50 (no filter)", "/ops/requests/"),
            ("list, page 2", "/ops/requests/?page=2"),
            ("list, errors (5xx)", "/ops/requests/?errors=1"),
            ("list, status 4xx", "/ops/requests/?status=4xx"),
            (f"list, one user ({picks['rare_user']})", f"/ops/requests/?user={picks['rare_user']}"),
            ("list, slow", "/ops/requests/?slow=1"),
            ("list, one route", "/ops/requests/?route=api/v1/reports/revenue"),
            ("story, a recent request", f"/ops/requests/{picks['newest']}/"),
            ("story, an old request", f"/ops/requests/{picks['old']}/"),
            ("story, a failed request", f"/ops/requests/{picks['failed']}/"),
        ]
        for label, url in cases:
            results[label] = timed(lambda url=url: page(url))
        results["engine list_requests(limit=50), no filter"] = timed(
            lambda: list_requests(logs, Filters(), 50), repeat=2
        )
        print(f"{total:.1f} MB of logs in {logs} (generated in {generated:.1f} s)")
        print()
        print("| page | median s | min s | max s |")
        print("| --- | --- | --- | --- |")
        for label, times in results.items():
            print(
                f"| {label} | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} |"
            )
        print(
            json.dumps(
                {
                    "megabytes": round(total, 1),
                    **{k: round(statistics.median(v), 4) for k, v in results.items()},
                }
            )
        )
    finally:
        from observability.output.writer import shutdown_writer

        shutdown_writer()  # its own lines written before their directory goes
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
