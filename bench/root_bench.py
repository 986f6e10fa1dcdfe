"""Reading a central root: one request's story, a trace and a listing from ~100 MB over 3 hosts.

    .venv/bin/python bench/root_bench.py      # BENCH_LOG_MB=100 by default (split over 3 hosts)

Each host folder gets bench/logtrace_bench.py's files (live + 5 backups each); the request
asked for is in the middle of one host's files. Times the engine's calls (best of three)
and the whole `manage.py logtrace --root` command (Python and Django start-up included).
Prints a table and one JSON line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdef")
os.environ.setdefault("LOG_CONSOLE", "0")

import django  # noqa: E402

django.setup()

from bench.logtrace_bench import generate  # noqa: E402
from observability.logtrace import Filters, list_requests, story  # noqa: E402

HOSTS = ("app-a", "app-b", "app-c")


def best(call) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(3):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return round(min(times), 3)


def main() -> None:
    megabytes = int(os.environ.get("BENCH_LOG_MB", "100"))
    root = Path(tempfile.mkdtemp(prefix="root-bench-"))
    try:
        rids = {}
        for host in HOSTS:
            (root / host).mkdir()
            rids[host] = generate(root / host, megabytes // len(HOSTS))
        total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        rid = rids["app-b"]
        found = story(root, rid)
        assert found is not None
        assert found.summary.host == "app-b", found.summary
        result = {
            "megabytes": round(total / 1e6),
            "hosts": len(HOSTS),
            "story_in_process_s": best(lambda: story(root, rid)),
            "list_50_in_process_s": best(lambda: list_requests(root, Filters(), 50)),
            "list_50_one_host_s": best(lambda: list_requests(root, Filters(host="app-c"), 50)),
        }
        command = [sys.executable, "manage.py", "logtrace", "--root", str(root), rid]
        result["story_command_s"] = best(
            lambda: subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for key, value in result.items():
        print(f"{key:28} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
