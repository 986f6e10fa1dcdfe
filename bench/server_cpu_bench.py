"""CPU per request inside a gunicorn worker under wrk: bare, this layer, this layer disabled.

One sync worker (`-w 1`) serves the DRF endpoint while `wrk -t2 -c16` loads it; each of the
worker's threads' CPU (utime + stime from /proc) is read before and after and divided by
the requests served. Where throughput alone says "slower", this says where the CPU went:
the request thread, or the log writer thread.

Run: .venv/bin/python bench/server_cpu_bench.py [rounds]   (needs wrk)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench import free_port  # noqa: E402

BIN = Path(sys.executable).parent
SECONDS = 5
VARIANTS = (("bare", "{}"), ("ours", "{}"), ("ours, ENABLED False", '{"ENABLED": false}'))


def threads_cpu(pid: int) -> dict[str, float]:
    """Each thread's CPU seconds so far, by thread ID."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        found[tid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def one_run(variant: str, observability: str) -> dict[str, float]:
    port = free_port()
    env = {
        **os.environ,
        "BENCH_VARIANT": variant.split(",")[0],
        "BENCH_OBSERVABILITY": observability,
        "BENCH_LOG_DIR": tempfile.mkdtemp(prefix="bench-server-cpu-"),
        "DJANGO_SETTINGS_MODULE": "bench.settings",
    }
    args = [str(BIN / "gunicorn"), "bench.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [*args, "-w", "1", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/ping/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        children = subprocess.run(
            ["pgrep", "-P", str(server.pid)], capture_output=True, text=True, check=True
        )
        worker = int(children.stdout.split()[0])
        before = threads_cpu(worker)
        url = f"http://127.0.0.1:{port}/api/v1/ping/"
        out = subprocess.run(
            ["wrk", "-t2", "-c16", f"-d{SECONDS}s", url], capture_output=True, text=True
        ).stdout
        after = threads_cpu(worker)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    served = int(re.search(r"(\d+) requests in", out).group(1))
    main = (after[str(worker)] - before.get(str(worker), 0.0)) / served * 1e6
    others = sum(after[t] - before.get(t, 0.0) for t in after if t != str(worker))
    return {
        "req/s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "request thread µs": main,
        "other threads µs": others / served * 1e6,
    }


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in VARIANTS}
    for _ in range(rounds):
        for name, observability in VARIANTS:
            results[name].append(one_run(name, observability))
    print("| variant | req/s | request thread CPU µs/request | writer thread CPU µs/request |")
    print("| --- | --- | --- | --- |")
    for name, runs in results.items():
        cells = [
            "-".join(f"{v:.0f}" for v in (min(r[k] for r in runs), max(r[k] for r in runs)))
            for k in ("req/s", "request thread µs", "other threads µs")
        ]
        print(f"| {name} | {' | '.join(cells)} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
