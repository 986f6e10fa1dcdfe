"""Time the viewer's overview page on ~100 MB of logs that end now; prints a table and one JSON line.

    .venv/bin/python bench/overview_bench.py        # BENCH_LOG_MB=100 by default

The files are `viewer_bench.generate`'s (requests, general, errors with tracebacks, security;
rotated into numbered backups), their first request 15 minutes ago, so every line of the
requests and security files is inside the last hour: the page reads them all. Each case
renders the page with Django's test client as a logged-in staff user: a cold view (the
cache emptied before it: the files are read) and a warm one (the cache answers), wall time
and CPU time (`time.process_time`), and the engine's own `overview()` for comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.viewer_bench import MB, ROOT, generate


def timed(call, repeat: int = 5) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of `repeat` calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return wall, cpu


def main() -> None:
    megabytes = int(os.environ.get("BENCH_LOG_MB", "100"))
    work = Path(tempfile.mkdtemp(prefix="overview-bench-"))
    logs = work / "logs"
    logs.mkdir()
    try:
        started = time.perf_counter()
        picks = generate(logs, megabytes, start=datetime.now(UTC) - timedelta(minutes=15))
        generated = time.perf_counter() - started
        total = sum(p.stat().st_size for p in logs.iterdir()) / MB
        os.environ.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            SECRET_KEY="bench-only-secret-key-0123456789abcdef",
            LOG_BASE_DIR=str(work / "own-logs"),
            LOG_CONSOLE="0",
            DATABASE_URL=f"sqlite:///{work / 'bench.sqlite3'}",
        )
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.cache import cache
        from django.core.management import call_command
        from django.test import Client

        from observability.logtrace.overview import overview
        from observability.viewer.overview import BUDGET

        call_command("migrate", verbosity=0)
        call_command("createcachetable", verbosity=0)
        staff = get_user_model().objects.create_user("bench", password="x", is_staff=True)
        settings.LOG_BASE_DIR = str(logs)
        client = Client()
        client.force_login(staff)

        def page(url: str, cold: bool) -> None:
            if cold:
                cache.clear()
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            assert b'id="overview-chart"' in response.content

        results = {}
        for window in ("1h", "1d"):
            url = f"/ops/overview/?window={window}"
            results[f"page {window}, cold (reads the files)"] = timed(lambda u=url: page(u, True))
            results[f"page {window}, warm (cached)"] = timed(lambda u=url: page(u, False))
        engine = {}
        results["engine overview(60 min)"] = timed(
            lambda: engine.update(o=overview(logs, minutes=60, threshold=1.0, budget=BUDGET)),
            repeat=3,
        )
        found = engine["o"]
        print(
            f"{total:.1f} MB of logs in {logs} (generated in {generated:.1f} s, newest line "
            f"{picks['last']}); the hour held {found.total_requests:.0f} requests, "
            f"{found.total_errors:.0f} errors, {found.total_security} security events; "
            f"{found.lines_read} lines read, {found.lines_parsed} taken apart, "
            f"partial={found.partial}"
        )
        print()
        print("| case | median wall s | max wall s | median CPU s |")
        print("| --- | --- | --- | --- |")
        for label, (wall, cpu) in results.items():
            print(
                f"| {label} | {statistics.median(wall):.3f} | {max(wall):.3f} "
                f"| {statistics.median(cpu):.3f} |"
            )
        print(
            json.dumps(
                {
                    "megabytes": round(total, 1),
                    **{k: round(statistics.median(w), 4) for k, (w, _) in results.items()},
                }
            )
        )
    finally:
        from observability.output.writer import shutdown_writer

        shutdown_writer()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
