"""make bench: this layer against bare Django+DRF and the peers, side by side, interleaved.

1. In-process: Django's WSGI handler, one DRF endpoint, every variant writing real rotating
   files; each run in its own process, variants interleaved round by round; the median
   µs/request with min-max, the ratio to bare, lines and bytes per request.
2. One record on the request thread (listener held back), all-in (listener running), and a
   synchronous RotatingFileHandler write.
3. RSS of a process after 1k and after 100k requests through the layer.
4. Real servers (gunicorn sync and uvicorn, one worker each) under wrk on 127.0.0.1, the
   server and wrk pinned to separate cores: req/s and p50/p99 latency of every variant
   (bare, this layer, the three peers), interleaved round by round.
5. Instructions per request of every variant (bench/instructions.py all, callgrind):
   figures a busy machine does not move (skipped without valgrind).
6. logtrace on ~100 MB of generated logs.
7. Per phase (bench/phases_bench.py), and each phase beside its floor, the least Python
   doing the same job unchecked (bench/floors_bench.py).
8. Volume (bench/volume_bench.py): the per-request cost of metrics and sampling, lines and
   bytes per 1,000 requests at SAMPLE_RATE 1.0 and 0.1, a login flood with and without
   flood control.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BIN = Path(PY).parent
VARIANTS = ["bare", "ours", "django-guid", "django-log-request-id", "django-structlog"]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "3000"))
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "8"))
OUT: list[str] = []
#: What the README's side-by-side summary is made of, filled by the sections as they run.
SUMMARY: dict[str, dict[str, str]] = {}
#: What this run says of the targets (issue 27), one line each, for summary.md.
VERDICTS: list[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)
    OUT.append(line)


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def run_json(args: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def in_process() -> None:
    say("## In-process (Django WSGI handler, DRF endpoint, real rotating files)")
    say(
        f"{ROUNDS} interleaved rounds x {REQUESTS} requests per variant and method; CPU µs per "
        "request of the whole process (the writer thread included: on a shared machine, time "
        "spent waiting for a core is not counted); median (min-max); each round's ratio is to "
        "the same round's bare run. GET: /api/v1/ping/; POST: a serializer validated and "
        "one line logged by the view."
    )
    say()
    for method in ("GET", "POST"):
        in_process_method(method)


def in_process_method(method: str) -> None:
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for _ in range(ROUNDS):
        for variant in VARIANTS:
            logs = tempfile.mkdtemp(prefix=f"bench-{variant}-")
            env = {
                **os.environ,
                "BENCH_VARIANT": variant,
                "BENCH_LOG_DIR": logs,
                "BENCH_REQUESTS": str(REQUESTS),
                "BENCH_METHOD": method,
            }
            results[variant].append(run_json([PY, "bench/inprocess.py"], env))
            shutil.rmtree(logs, ignore_errors=True)
    bare = [r["cpu_us_per_request"] for r in results["bare"]]

    def ratios_of(variant: str) -> list[float]:
        return [r["cpu_us_per_request"] / b for r, b in zip(results[variant], bare, strict=True)]

    say(f"**{method}**")
    say()
    say("| variant | CPU µs/request | ratio to bare | lines/request | bytes/request |")
    say("| --- | --- | --- | --- | --- |")
    for variant in VARIANTS:
        runs = results[variant]
        us = [r["cpu_us_per_request"] for r in runs]
        SUMMARY.setdefault(variant, {})[f"in-process {method}"] = (
            f"{spread(ratios_of(variant), '{:.2f}')}x"
        )
        say(
            f"| {variant} | {spread(us)} | {spread(ratios_of(variant), '{:.2f}')}x | "
            f"{runs[0]['lines_per_request']:.1f} | {runs[0]['bytes_per_request']:.0f} |"
        )
    say()
    ours = ratios_of("ours")
    for peer in VARIANTS[2:]:
        theirs = ratios_of(peer)
        if max(ours) < min(theirs):
            verdict = "lower, the ranges apart"
        elif min(ours) > max(theirs):
            verdict = "higher, the ranges apart"
        else:
            verdict = "the ranges overlap: no order"
        say(f"- {method}, this layer against {peer} (ratio to bare, {ROUNDS} rounds): {verdict}")
        VERDICTS.append(f"In-process {method}, this layer against {peer}: {verdict}.")
    say()


def per_record() -> None:
    say("## One record")
    runs = [run_json([PY, "bench/records.py"], dict(os.environ)) for _ in range(3)]
    say("| path | µs/record |")
    say("| --- | --- |")
    say(
        f"| request thread: filters + enqueue (listener held back) | {spread([r['enqueue'] for r in runs], '{:.1f}')} |"
    )
    say(
        f"| all-in: the same with the listener formatting and writing | {spread([r['queued'] for r in runs], '{:.1f}')} |"
    )
    say(
        f"| synchronous RotatingFileHandler, same formatter and filters | {spread([r['sync'] for r in runs], '{:.1f}')} |"
    )
    say()


def memory() -> None:
    logs = tempfile.mkdtemp(prefix="bench-rss-")
    env = {
        **os.environ,
        "BENCH_VARIANT": "ours",
        "BENCH_LOG_DIR": logs,
        "BENCH_REQUESTS": "1000",
        "BENCH_WARMUP": "0",
        "BENCH_RSS_CURVE": "99000",
    }
    result = run_json([PY, "bench/inprocess.py"], env)
    shutil.rmtree(logs, ignore_errors=True)
    say("## Memory (this layer, one process)")
    say(
        f"RSS after 1k requests: {result['rss_after_1k'] / 1024:.1f} MB; "
        f"after 100k: {result['rss_after_more'] / 1024:.1f} MB."
    )
    say()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(kind: str, variant: str, logs: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        **os.environ,
        "BENCH_VARIANT": variant,
        "BENCH_LOG_DIR": logs,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
    }
    if kind.startswith("gunicorn"):
        workers = kind.split("-")[1]
        args = [
            str(BIN / "gunicorn"),
            "bench.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "-w",
            workers,
            "--log-level",
            "warning",
        ]
    else:
        args = [
            str(BIN / "uvicorn"),
            "bench.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    proc = subprocess.Popen(
        pinned(args, SERVER_CORE),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/ping/", timeout=2):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} {variant} did not start")


def wrk(port: int) -> dict[str, float]:
    done = subprocess.run(
        pinned(
            [
                "wrk",
                "-t1",
                "-c8",
                f"-d{WRK_SECONDS}s",
                "--latency",
                f"http://127.0.0.1:{port}/api/v1/ping/",
            ],
            WRK_CORE,
        ),
        capture_output=True,
        text=True,
        timeout=WRK_SECONDS + 60,
    )
    text = done.stdout

    def ms(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", text)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p50": ms("50%"),
        "p99": ms("99%"),
    }


def pinned(args: list[str], core: int | None) -> list[str]:
    """The command on one core (taskset), when there are two to keep apart."""
    if core is None or shutil.which("taskset") is None:
        return args
    return ["taskset", "-c", str(core), *args]


#: The server on core 0 and wrk on core 1, so the load generator never takes the server's
#: CPU (on one core: neither is pinned, and the ratios say less).
SERVER_CORE, WRK_CORE = (0, 1) if (os.cpu_count() or 1) >= 2 else (None, None)


def servers() -> None:
    say("## Real servers (one worker, wrk -t1 -c8 on 127.0.0.1, DRF endpoint)")
    if shutil.which("wrk") is None:
        say("wrk is not installed: skipped.")
        return
    rounds = int(os.environ.get("BENCH_SERVER_ROUNDS", "2"))
    where = (
        f"server pinned to core {SERVER_CORE}, wrk to core {WRK_CORE}"
        if SERVER_CORE is not None
        else "one core: server and wrk share it"
    )
    say(
        f"Every variant, {rounds} interleaved rounds of {WRK_SECONDS}s each; {where}; "
        "median req/s and latency, each variant's ratio to bare."
    )
    say()
    say("| server | variant | req/s | ratio to bare | p50 ms | p99 ms | p99 to bare |")
    say("| --- | --- | --- | --- | --- | --- | --- |")
    for kind in ("gunicorn-1", "uvicorn"):
        found: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
        for _ in range(rounds):
            for variant in VARIANTS:
                logs = tempfile.mkdtemp(prefix="bench-srv-")
                proc, port = serve(kind, variant, logs)
                try:
                    found[variant].append(wrk(port))
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(30)
                    shutil.rmtree(logs, ignore_errors=True)
        med = {
            v: {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
            for v, runs in found.items()
        }
        for variant in VARIANTS:
            m = med[variant]
            SUMMARY.setdefault(variant, {})[f"{kind} req/s"] = (
                f"{m['rps'] / med['bare']['rps']:.2f}x"
            )
            SUMMARY.setdefault(variant, {})[f"{kind} p99"] = f"{m['p99'] / med['bare']['p99']:.2f}x"
            say(
                f"| {kind} | {variant} | {m['rps']:.0f} | {m['rps'] / med['bare']['rps']:.2f} | "
                f"{m['p50']:.2f} | {m['p99']:.2f} | {m['p99'] / med['bare']['p99']:.2f} |"
            )
        ours_rps = med["ours"]["rps"]
        below = [v for v in VARIANTS[2:] if med[v]["rps"] > ours_rps]
        p99 = med["ours"]["p99"] / med["bare"]["p99"]
        VERDICTS.append(
            f"{kind}: this layer's req/s is "
            + (f"below {', '.join(below)}'s" if below else "at or above every peer's")
            + f"; its p99 is {p99:.2f}x bare's ("
            + ("within" if p99 <= 1.10 else "beyond")
            + " 10%)."
        )
    say()


def instructions() -> None:
    """bench/instructions.py for every variant: counts that a busy machine does not move."""
    if shutil.which("valgrind") is None:
        say("## Instructions per request")
        say("valgrind is not installed: skipped (apt-get install valgrind).")
        say()
        return
    lines = script_table(
        "Instructions per request (callgrind, every variant, PERF-NOTES's method)",
        "bench/instructions.py",
        timeout=7200,
        args=["all"],
        json_lines=True,
    )
    for line in lines:  # | variant | GET M | ratio | POST M | ratio |
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 5 and cells[0] in VARIANTS:
            SUMMARY.setdefault(cells[0], {})["instructions GET"] = f"{cells[2]}x"
            SUMMARY.setdefault(cells[0], {})["instructions POST"] = f"{cells[4]}x"
    for method in ("GET", "POST"):
        column = f"instructions {method}"
        ours = SUMMARY.get("ours", {}).get(column)
        if ours is None:
            continue
        mine = float(ours.rstrip("x"))
        below = [
            v
            for v in VARIANTS[2:]
            if float(SUMMARY.get(v, {}).get(column, ours).rstrip("x")) < mine
        ]
        VERDICTS.append(
            f"Instructions {method}: this layer's ratio is "
            + (f"above {', '.join(below)}'s." if below else "below every peer's.")
        )


def logtrace() -> None:
    script_table("logtrace on ~100 MB of logs", "bench/logtrace_bench.py", timeout=1800)


def viewer() -> None:
    script_table("Trace viewer on ~100 MB of logs", "bench/viewer_bench.py", timeout=1800)


def script_table(
    title: str | None,
    script: str,
    timeout: int = 900,
    args: list[str] | None = None,
    json_lines: bool = False,
) -> list[str]:
    """A section a script prints: a markdown table, then (with a title) one JSON line.

    With `json_lines`, the script prints JSON lines first, then its table: only the table.
    """
    done = subprocess.run(
        [PY, script, *(args or [])],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    lines = done.stdout.rstrip("\n").splitlines()
    if json_lines:
        lines = [line for line in lines if not line.startswith("{")]
    elif title is not None:
        lines = lines[:-1]
    if title is not None:
        say(f"## {title}")
        say()
    for line in lines:
        say(line)
    say()
    return lines


def phases() -> None:
    script_table("Where the time goes (per phase, per thread)", "bench/phases_bench.py")


def floors() -> None:
    script_table(
        "Each phase beside its floor (the least Python doing the same job, unchecked)",
        "bench/floors_bench.py",
    )


def queries() -> None:
    script_table(None, "bench/queries_bench.py")


def tracecontext() -> None:
    script_table("Trace context (per request)", "bench/tracecontext_bench.py")


def tasks() -> None:
    script_table("Background tasks (per task published, per task run)", "bench/tasks_bench.py")


def volume() -> None:
    script_table(None, "bench/volume_bench.py", timeout=1800)


#: The machine's load average when the run started (1, 5, 15 minutes): a figure in time
#: from a busy machine says less, and summary.md says how busy it was.
LOAD_AT_START = os.getloadavg()


def main() -> None:
    say(
        f"# make bench ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]})"
    )
    say()
    sections = os.environ.get(
        "BENCH_ONLY",
        "phases,floors,inprocess,records,memory,servers,instructions,logtrace,viewer,"
        "tracecontext,tasks,queries,volume",
    ).split(",")
    for name, section in (
        ("phases", phases),
        ("floors", floors),
        ("tracecontext", tracecontext),
        ("tasks", tasks),
        ("queries", queries),
        ("viewer", viewer),
        ("inprocess", in_process),
        ("records", per_record),
        ("memory", memory),
        ("servers", servers),
        ("instructions", instructions),
        ("logtrace", logtrace),
        ("volume", volume),
    ):
        if name in sections:
            section()
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.md").write_text("\n".join(OUT) + "\n")
    print(f"\nwritten to {results / 'latest.md'}")
    if {"inprocess", "servers", "instructions"} <= set(sections):
        write_summary(results / "summary.md")


#: The README's copy of bench/results/summary.md sits between these (tests/test_readme.py).
SUMMARY_START = "<!-- bench/results/summary.md: written by make bench, never by hand -->"
SUMMARY_END = "<!-- end of bench/results/summary.md -->"


def write_summary(path: Path) -> None:
    """The side-by-side table of this run, in bench/results/summary.md and the README."""
    columns = [
        "in-process GET",
        "in-process POST",
        "instructions GET",
        "instructions POST",
        "gunicorn-1 req/s",
        "gunicorn-1 p99",
        "uvicorn req/s",
        "uvicorn p99",
    ]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"One `make bench` run at commit {commit or 'unknown'}, {OUT[0].removeprefix('# make bench ').strip('()')}: "
        f"each figure is the variant's ratio to bare Django + DRF in the same run. In-process: "
        f"CPU time, median (min-max) of {ROUNDS} interleaved rounds; instructions: callgrind; "
        "servers: one worker, req/s (higher is better) and p99 latency (lower is better). "
        f"Load average (1 min) {LOAD_AT_START[0]:.1f} when the run started and "
        f"{os.getloadavg()[0]:.1f} when it ended, on {os.cpu_count()} cores: a load above "
        "the core count means other work shared them, and the figures in time say less than "
        "the instruction counts, which do not depend on it.",
        "",
        "| variant | " + " | ".join(columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for variant in VARIANTS:
        row = SUMMARY.get(variant, {})
        lines.append(f"| {variant} | " + " | ".join(row.get(c, "-") for c in columns) + " |")
    if VERDICTS:
        lines += ["", "The targets, as this run reads them:", ""]
        lines += [f"- {verdict}" for verdict in VERDICTS]
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    readme = ROOT / "README.md"
    before = readme.read_text()
    if SUMMARY_START in before and SUMMARY_END in before:
        head, rest = before.split(SUMMARY_START, 1)
        tail = rest.split(SUMMARY_END, 1)[1]
        readme.write_text(f"{head}{SUMMARY_START}\n{text}{SUMMARY_END}{tail}")
    print(f"written to {path} and the README's Performance section")


if __name__ == "__main__":
    main()
