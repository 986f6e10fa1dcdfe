"""make bench, "volume": what sampling, flood control and metrics cost and save.

1. In-process (Django's WSGI handler, one fast DRF endpoint, real rotating files), the
   layer with metrics off, on (one process), on in multiprocess mode (files in
   PROMETHEUS_MULTIPROC_DIR, as under gunicorn), and with SAMPLE_RATE 0.1: µs/request
   (median of interleaved rounds, min-max), lines and bytes written per 1,000 requests.
2. The per-call cost of the sampling decision and of counting one request in the
   metrics, alone (best of 5).
3. A login flood through the project's real login endpoint (config.settings, SQLite,
   a fast password hasher): bytes and lines the security and requests files grow by per
   1,000 failed logins from one client, flood control off (FLOOD_LIMIT 0) and on.

Prints Markdown; bench/bench.py includes it in bench/results/latest.md.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench import run_json, spread  # noqa: E402 - one copy of the bench helpers

PY = sys.executable
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "3000"))
FLOOD_ATTEMPTS = int(os.environ.get("BENCH_FLOOD_ATTEMPTS", "3000"))
HISTORY = 5 * 1024 * 1024 * 11  # the security file and its 10 backups
FLOOD_RATE = int(os.environ.get("BENCH_FLOOD_RATE", "200"))  # attempts/s for the "lasts" column
WORKERS = 4

VARIANTS = {
    "metrics off, SAMPLE_RATE 1.0 (the layer before #12)": ({"METRICS": False}, False),
    "**default**: metrics on, SAMPLE_RATE 1.0": ({}, False),
    "metrics on, multiprocess mode (gunicorn)": ({}, True),
    "metrics on, SAMPLE_RATE 0.1": ({"SAMPLE_RATE": 0.1}, False),
    "metrics off, SAMPLE_RATE 0.1": ({"SAMPLE_RATE": 0.1, "METRICS": False}, False),
}


def in_process() -> list[str]:
    results: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for _ in range(ROUNDS):
        for name, (flags, multiprocess) in VARIANTS.items():
            logs = tempfile.mkdtemp(prefix="bench-volume-")
            env = {
                **os.environ,
                "BENCH_VARIANT": "ours",
                "BENCH_LOG_DIR": logs,
                "BENCH_REQUESTS": str(REQUESTS),
                "BENCH_OBSERVABILITY": json.dumps(flags),
            }
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            if multiprocess:
                env["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(logs, "prometheus")
            results[name].append(run_json([PY, "bench/inprocess.py"], env))
            shutil.rmtree(logs, ignore_errors=True)
    first = results[next(iter(VARIANTS))]
    base = statistics.median(r["cpu_us_per_request"] for r in first)
    out = [
        "### In-process: per-request cost and volume",
        "",
        f"{ROUNDS} interleaved rounds x {REQUESTS} GET requests (all fast 200s) per variant; "
        "median (min-max). CPU µs: every thread of the process (request thread and log "
        "writer), steadier than wall time on a shared machine.",
        "",
        "| variant | CPU µs/request | vs metrics off | wall µs/request | lines / 1,000 requests "
        "| bytes / 1,000 requests |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, runs in results.items():
        cpu = [r["cpu_us_per_request"] for r in runs]
        wall = [r["us_per_request"] for r in runs]
        lines = statistics.median(r["lines_per_request"] for r in runs) * 1000
        size = statistics.median(r["bytes_per_request"] for r in runs) * 1000
        out.append(
            f"| {name} | {spread(cpu)} | {statistics.median(cpu) - base:+.0f} µs | "
            f"{spread(wall)} | {lines:.0f} | {size / 1024:.0f} KB |"
        )
    return [*out, ""]


MICRO = """
import json, os, timeit
import django
django.setup()
from observability.http.sampling import keeps
from observability.monitoring.metrics import observe_request
from observability.monitoring.metrics import instruments
instruments()
ids = [f"{n:08x}-71d8-4115-b915-3dc875974c9e" for n in range(1000)]
def decide():
    for rid in ids:
        keeps(rid, 0.1)
def count():
    for n in range(1000):
        observe_request("GET", "api/v1/ping/", 200, 0.0012)
print(json.dumps({
    "keeps": min(timeit.repeat(decide, number=20, repeat=5)) / 20_000 * 1e6,
    "observe": min(timeit.repeat(count, number=20, repeat=5)) / 20_000 * 1e6,
}))
"""


def micro() -> list[str]:
    env = {**os.environ, "BENCH_VARIANT": "ours", "BENCH_LOG_DIR": tempfile.mkdtemp()}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    single = run_json([PY, "-c", MICRO], env)
    multi_dir = tempfile.mkdtemp(prefix="bench-prometheus-")
    multi = run_json([PY, "-c", MICRO], {**env, "PROMETHEUS_MULTIPROC_DIR": multi_dir})
    shutil.rmtree(multi_dir, ignore_errors=True)
    shutil.rmtree(env["BENCH_LOG_DIR"], ignore_errors=True)
    return [
        "### One call (best of 5 x 20,000)",
        "",
        "| call | µs |",
        "| --- | --- |",
        f"| `sampling.keeps(request_id, 0.1)`: the per-request decision | {single['keeps']:.2f} |",
        f"| `metrics.observe_request(...)`: counter + histogram, one process | "
        f"{single['observe']:.2f} |",
        f"| the same in multiprocess mode (values in mmap'ed files) | {multi['observe']:.2f} |",
        "",
    ]


def flood_run() -> None:
    """One process: migrate a fresh SQLite file, then failed logins through the WSGI handler."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.core.handlers.wsgi import WSGIHandler

    from bench.inprocess import environ as wsgi_environ
    from observability import flush_logs
    from observability.testing import drain_logs

    handler = WSGIHandler()
    body = b'{"username": "nobody", "password": "guess"}'

    def start_response(status, headers, exc_info=None):
        assert status.startswith("401"), status

    log_dir = Path(os.environ["LOG_BASE_DIR"])
    for n in range(FLOOD_ATTEMPTS + 20):
        if n == 20:  # warmed up: measure from here
            flush_logs(30)
            before = {p.name: p.stat().st_size for p in log_dir.glob("*.log")}
            lines_before = {p.name: p.read_bytes().count(b"\n") for p in log_dir.glob("*.log")}
        environ = wsgi_environ(
            "/api/v1/auth/token/",
            body=body,
            REQUEST_METHOD="POST",
            CONTENT_TYPE="application/json",
            CONTENT_LENGTH=str(len(body)),
            # Warm up from another client: the flood's key starts fresh when measured.
            REMOTE_ADDR="203.0.113.66" if n >= 20 else "198.51.100.1",
            HTTP_USER_AGENT="",  # none sent
        )
        for _chunk in handler(environ, start_response):
            pass
    drain_logs(30)  # the pending summaries, as at SIGTERM
    grown = {}
    for path in log_dir.glob("*.log"):
        grown[path.name] = {
            "bytes": path.stat().st_size - before.get(path.name, 0),
            "lines": path.read_bytes().count(b"\n") - lines_before.get(path.name, 0),
        }
    print(json.dumps(grown))


def flood() -> list[str]:
    results = {}
    for label, limit in (("off (FLOOD_LIMIT 0)", "0"), ("on (default: 10 per 60 s)", "10")):
        work = Path(tempfile.mkdtemp(prefix="bench-flood-"))
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.e2e.settings_volume",
            "SECRET_KEY": "bench-only-secret-key-0123456789abcdef",
            "DEBUG": "0",
            "LOG_CONSOLE": "0",
            "LOG_BASE_DIR": str(work / "logs"),
            "DATABASE_URL": f"sqlite:///{work / 'flood.sqlite3'}",
            "FLOOD_LIMIT": limit,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        results[label] = run_json([PY, "bench/volume_bench.py", "--flood-run"], env)
        shutil.rmtree(work, ignore_errors=True)
    per = 1000 / FLOOD_ATTEMPTS
    off = next(iter(results.values()))
    line_bytes = off["billing_api_security.log"]["bytes"] / off["billing_api_security.log"]["lines"]
    # A continuous flood: FLOOD_RATE attempts/s spread over WORKERS processes, for hours.
    unguarded = FLOOD_RATE * line_bytes  # bytes/s: every attempt writes its event
    guarded = WORKERS * 11 * line_bytes / 60  # per worker and minute: 10 events + 1 summary
    out = [
        "### Login flood: one client's failed logins (security history: 5 MB x 10 + live file)",
        "",
        "| flood control | security file per 1,000 attempts | security lines per 1,000 | "
        f"requests file per 1,000 | the history lasts, at {FLOOD_RATE} attempts/s over "
        f"{WORKERS} workers |",
        "| --- | --- | --- | --- | --- |",
    ]
    for (label, grown), rate in zip(results.items(), (unguarded, guarded), strict=True):
        security = grown.get("billing_api_security.log", {"bytes": 0, "lines": 0})
        requests = grown.get("billing_api_requests.log", {"bytes": 0, "lines": 0})
        out.append(
            f"| {label} | {security['bytes'] * per / 1024:.1f} KB | {security['lines'] * per:.0f} "
            f"| {requests['bytes'] * per / 1024:.0f} KB | {duration(HISTORY / rate)} |"
        )
    out += [
        "",
        f"Measured: {FLOOD_ATTEMPTS:,} attempts through the WSGI handler in one process "
        f"(one window), {line_bytes:.0f} bytes per security line. With flood control a "
        "window holds FLOOD_LIMIT events per type and process, then one summary: the file "
        "grows with time, not with the attempts. Every attempt is still a 401 in the "
        "requests file (errors are never sampled).",
        "",
    ]
    return out


def duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 86400:.0f} days"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    if sys.argv[1:] == ["--flood-run"]:
        flood_run()
        return
    sections = os.environ.get("BENCH_VOLUME_ONLY", "inprocess,micro,flood").split(",")
    lines = ["## Volume: sampling, flood control, metrics", ""]
    for name, section in (("inprocess", in_process), ("micro", micro), ("flood", flood)):
        if name in sections:
            lines += section()
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
