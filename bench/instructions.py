"""Instructions per request, counted by callgrind: the same from run to run on a busy machine.

PERF-NOTES's method: Django's WSGI handler called in a loop in one process, after 50
warm-up requests; per request = (count at 300 requests - count at 100) / 200, so start-up
cancels out; the writer thread's work is included (it is drained before exit). The
writer's clock is stopped (it wakes for a batch or a flush, never every 50 ms), and
`time.time` and `time.perf_counter` move 50 µs a read, so the count does not grow with how
long a run took on a busy machine; the heap made at start-up
is frozen after the warm-up (gc.freeze), so no full collection walks it during a run. One DRF GET
endpoint, and one POST that validates a serializer and logs one line.

    python bench/instructions.py                 # bare and ours, GET and POST
    python bench/instructions.py ours            # some variants
    python bench/instructions.py all             # bare, ours and the three peers side by side
    BENCH_INSTRUCTIONS_ANNOTATE=1 python bench/instructions.py ours   # + the top functions
    BENCH_PADS=0,1,2,3 python bench/instructions.py ours   # the mean over four heap layouts

A change anywhere in the code moves where the heap falls, and with it a count by up to a
few thousand instructions a request (CPython's method cache and the context's HAMT go by
addresses): compare changes smaller than that with BENCH_PADS.

It imports `observability` from the current directory, so it can be run in a checkout of
any commit to compare two of them. Run this file from inside the checkout (its directory is
the first entry of sys.path: a busy directory such as /tmp there would make every late
import re-read it, a count that changes from run to run). Prints one JSON line per (variant, method) and a table.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import importlib
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve()
VARIANTS = ["bare", "ours", "django-guid", "django-log-request-id", "django-structlog"]
METHODS = tuple(os.environ.get("BENCH_METHODS", "GET,POST").split(","))
LOW, HIGH, WARMUP = 100, 300, 50
#: The heap layouts a count is the mean of (see BENCH_PAD in loop()).
PADS = tuple(int(pad) for pad in os.environ.get("BENCH_PADS", "0").split(","))
#: Runs under callgrind at once (each is one process, one core).
JOBS = int(os.environ.get("BENCH_JOBS", str(min(2, os.cpu_count() or 1))))
BODY = b'{"amount": "19.99", "currency": "USD", "description": "Pro plan"}'


def _ticking(start: float, step: float = 50e-6) -> Callable[[], float]:
    """A clock read in C, as the real one (a Python function would add a frame per read)."""
    return functools.partial(next, itertools.count(start, step))


def loop(count: int, method: str) -> None:
    """Run in the measured process: warm up, then `count` requests, then drain the writer."""
    # The same "random" bytes every run: IDs are checked for card-like digit runs, and
    # how much that check reads depends on the digits drawn.
    # BENCH_PAD: objects made before anything else move every later allocation. The
    # interpreter's method cache and the context's HAMT go by addresses, so any change to
    # the code (even one the requests never run) moves a count by a few thousand a request;
    # the mean over a few pads (BENCH_PADS) tells a change's effect from where the heap fell.
    padding = [bytes(n % 509) for n in range(int(os.environ.get("BENCH_PAD", "0")) * 331)]
    rng = random.Random(12345)
    os.urandom = rng.randbytes
    # Clocks that move by the call, not by the wall: on a busy machine a run under callgrind
    # takes minutes, and with real clocks the count grew with them (the text formatters
    # strftime once a second, a duration's digits vary, a stall could make a request slow).
    # Each read moves the clock 50 µs: a second passes every 20,000 reads, as a fast server's
    # would, and every run of the same code reads the same times.
    time.time = _ticking(1.8e9)
    time.perf_counter = _ticking(1000.0)
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    from bench.inprocess import environ

    handler = WSGIHandler()
    # The writer wakes for a batch or a flush only, never on the clock: counts that do not
    # depend on how long it ran (the module's place before and after the renovation's rooms).
    for name in ("observability.output.writer", "observability.output.writer"):
        try:
            writer_module = importlib.import_module(name)
        except ImportError:
            continue
        writer_module.IDLE_WAIT = writer_module.TICK_INTERVAL = 3600.0
        break

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        return None

    def request() -> None:
        if method == "GET":
            env = environ("/api/v1/ping/")
        else:
            env = environ(
                "/api/v1/orders/",
                body=BODY,
                REQUEST_METHOD="POST",
                CONTENT_TYPE="application/json",
                CONTENT_LENGTH=str(len(BODY)),
            )
        response = handler(env, start_response)
        for _chunk in response:
            pass
        response.close()

    # The writer thread runs when this one waits (at the final flush), never because the
    # interpreter switched threads on a timer: how often that happens depends on how slow
    # the machine is, and each switch costs instructions in both threads. From the warm-up
    # on: a switch there moves what is allocated where, and the run's count with it (the
    # interpreter's method cache and the context's HAMT go by addresses).
    sys.setswitchinterval(1000.0)
    for _ in range(WARMUP):
        request()
    # A full collection walks every object Django made at start-up (tens of millions of
    # instructions): whether one falls in a run would swing its count by more than the
    # layer costs. Frozen, the start-up heap is never walked again.
    gc.collect()
    gc.freeze()
    # bench/attribution.py: every Python frame from here on runs through its calling-context
    # node's own trampoline (bench/calltree.py), so callgrind counts each function's share.
    nodes_file = os.environ.get("BENCH_CALLTREE")
    tree = None
    if nodes_file:
        from bench import calltree

        tree = calltree.load()
        # No automatic collection either: it would charge its walk of every young object to
        # whichever function allocated last (bench/attribution.py counts it on its own).
        gc.disable()
        tree.start()
    for _ in range(count):
        request()
    del padding
    try:
        from observability import flush_logs
    except ImportError:
        pass
    else:
        flush_logs(60)
    if tree is not None:
        tree.stop()
        tree.dump(nodes_file)


def count_instructions(
    variant: str, method: str, count: int, out: Path, nodes_file: Path | None = None, pad: int = 0
) -> int:
    """Run the loop under callgrind; its total Ir. With `nodes_file`, per Python function too."""
    # The same log directory, empty, for every run of a (variant, method, count) in this
    # checkout: a random name would hash differently from run to run, and old files rotate.
    checkout = hashlib.sha256(os.getcwd().encode()).hexdigest()[:12]
    logs = (
        Path(tempfile.gettempdir())
        / f"bench-ir-logs-{checkout}"
        / f"{variant}-{method}-{count}-{pad}"
    )
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    env = {
        **os.environ,
        "BENCH_VARIANT": variant,
        "BENCH_LOG_DIR": str(logs),
        "PYTHONHASHSEED": "0",
        "BENCH_PAD": str(pad),
    }
    if nodes_file is not None:
        env["BENCH_CALLTREE"] = str(nodes_file)
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(HERE),
            "--loop",
            str(count),
            method,
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=1800,
    )
    for line in out.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    msg = f"no totals in {out}"
    raise RuntimeError(msg)


def top_functions(out: Path, limit: int = 25) -> list[str]:
    done = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line for line in done.stdout.splitlines() if re.match(r"\s*[\d,]+ \(", line)]
    return rows[:limit]


def main(variants: list[str]) -> None:
    results = []
    work = Path(tempfile.mkdtemp(prefix="bench-ir-"))
    # Every (variant, method, pad, count) is a run of its own: BENCH_JOBS of them at once
    # (counts do not depend on how busy the machine is, so running them side by side
    # changes only how long the whole takes).
    jobs = [
        (variant, method, pad, count)
        for method in METHODS
        for variant in variants
        for pad in PADS
        for count in (LOW, HIGH)
    ]

    def run(job: tuple[str, str, int, int]) -> int:
        variant, method, pad, count = job
        return count_instructions(
            variant, method, count, work / f"{variant}-{method}-{pad}-{count}.out", pad=pad
        )

    with ThreadPoolExecutor(JOBS) as pool:
        counts = dict(zip(jobs, pool.map(run, jobs), strict=True))
    for method in METHODS:
        for variant in variants:
            per_pad = [
                (counts[variant, method, pad, HIGH] - counts[variant, method, pad, LOW])
                / (HIGH - LOW)
                for pad in PADS
            ]
            if os.environ.get("BENCH_INSTRUCTIONS_ANNOTATE"):
                print("\n".join(top_functions(work / f"{variant}-{method}-{PADS[0]}-{HIGH}.out")))
            result = {
                "variant": variant,
                "method": method,
                "instructions": round(sum(per_pad) / len(per_pad)),
                "pads": [round(value) for value in per_pad],
            }
            results.append(result)
            print(json.dumps(result), flush=True)
    bare = {r["method"]: r["instructions"] for r in results if r["variant"] == "bare"}
    table = ["| variant | GET | ratio | POST | ratio |", "| --- | --- | --- | --- | --- |"]
    for variant in variants:
        row = [f"| {variant}"]
        for method in METHODS:
            value = next(
                r["instructions"]
                for r in results
                if r["variant"] == variant and r["method"] == method
            )
            ratio = f"{value / bare[method]:.3f}" if bare.get(method) else "-"
            row.append(f" {value / 1e6:.3f} M | {ratio}")
        table.append(" |".join(row) + " |")
    print("\n".join(table))
    write_results(table)


def write_results(table: list[str]) -> None:
    """bench/results/instructions.md: the table as this run made it, never copied by hand."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    results = HERE.parent / "results"
    results.mkdir(exist_ok=True)
    text = (
        "# Instructions per request\n\n"
        f"Written by `python bench/instructions.py` at commit {commit or 'unknown'} "
        "(callgrind; PERF-NOTES's method: (count at 300 requests - count at 100) / 200,\n"
        "the writer thread included). Counts do not depend on how busy the machine was.\n\n"
        + "\n".join(table)
        + "\n"
    )
    (results / "instructions.md").write_text(text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loop":
        loop(int(sys.argv[2]), sys.argv[3])
    else:
        chosen = sys.argv[1:] or ["bare", "ours"]
        if chosen == ["all"]:
            chosen = VARIANTS
        unknown = set(chosen) - set(VARIANTS)
        if unknown:
            sys.exit(
                f"unknown variants: {', '.join(sorted(unknown))} (known: {', '.join(VARIANTS)})"
            )
        main(chosen)
