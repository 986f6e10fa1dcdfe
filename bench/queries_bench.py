"""What counting a request's queries costs: per query, and per request without queries.

Per query, `SELECT 1` on an in-memory SQLite connection, three ways:
- `off`: DB_QUERIES off: no wrapper on the connection (what Django costs alone);
- `outside`: DB_QUERIES on, a query outside any request: our wrapper, one ContextVar read;
- `on`: inside a request's log, default settings (no record per query: DEBUG is off).
Per request: `queries.begin()` + `end()` + `stop()` with DB_QUERIES on, and off.

    python bench/queries_bench.py                 # time (median of 7), microseconds
    python bench/queries_bench.py --instructions  # callgrind: instructions, (N=3000 - N=1000) / 2000

Wall time moves by ±30% on a busy machine (PERF-NOTES): read the instructions.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("BENCH_VARIANT", "ours")
os.environ.setdefault("BENCH_LOG_DIR", tempfile.mkdtemp(prefix="bench-queries-"))
WAYS = ("off", "outside", "on", "request-off", "request-on")
PER_QUERY = WAYS[:3]
LOW, HIGH = 1000, 3000


def setup(way: str):  # -> the statement to run once per unit
    if way in ("off", "request-off"):
        os.environ["BENCH_OBSERVABILITY"] = json.dumps({"DB_QUERIES": False})
    import django

    django.setup()
    from django.db import connection

    from observability.conf import obs_settings
    from observability.spans import queries

    cursor = connection.cursor()  # opens the connection: our wrapper is put on it (if on)
    assert (queries.watch in connection.execute_wrappers) == obs_settings.DB_QUERIES
    if way == "on":
        queries.begin()
    if way in PER_QUERY:
        return lambda: cursor.execute("SELECT 1")

    def request() -> None:
        begun = queries.begin()
        if begun is not None:
            queries.end(begun[0])
            queries.stop(begun[1])

    return request


def loop(way: str, count: int) -> None:
    statement = setup(way)
    from observability.output import writer as writer_module

    # As bench/instructions.py: the writer wakes for a batch or a flush only, never on the
    # clock, so the count does not grow with how long a run took under valgrind.
    writer_module.IDLE_WAIT = writer_module.TICK_INTERVAL = 3600.0
    for _ in range(200):
        statement()
    # As bench/instructions.py: no full collection of the start-up heap falls in a run.
    sys.setswitchinterval(1000.0)
    gc.collect()
    gc.freeze()
    for _ in range(count):
        statement()


def timed() -> None:
    results = {}
    for way in WAYS:
        out = subprocess.run(
            [sys.executable, str(HERE), "--time", way], capture_output=True, text=True, check=True
        )
        results[way] = float(out.stdout)
    print("## Database queries: what counting them costs (median of 7, wall time)\n")
    print("| per query | µs | added |\n| --- | --- | --- |")
    for way in PER_QUERY:
        print(f"| {way} | {results[way]:.3f} | {results[way] - results['off']:+.3f} |")
    print("\n| per request, no query | µs |\n| --- | --- |")
    for way in ("request-off", "request-on"):
        print(f"| {way} | {results[way]:.3f} |")


def time_one(way: str) -> float:
    statement = setup(way)
    number = 20_000
    runs = timeit.repeat(statement, number=number, repeat=7)
    return statistics.median(runs) / number * 1e6


def instructions() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-queries-ir-"))
    counts: dict[str, float] = {}
    for way in WAYS:
        totals = []
        for count in (LOW, HIGH):
            out = work / f"{way}-{count}.out"
            subprocess.run(
                [
                    *("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"),
                    *(sys.executable, str(HERE), "--loop", way, str(count)),
                ],
                check=True,
                capture_output=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
                timeout=1800,
            )
            line = next(x for x in out.read_text().splitlines() if x.startswith("totals:"))
            totals.append(int(line.split()[1]))
        counts[way] = (totals[1] - totals[0]) / (HIGH - LOW)
        print(json.dumps({"way": way, "instructions": round(counts[way])}), flush=True)
    print("\n| per query | instructions | added |\n| --- | --- | --- |")
    for way in PER_QUERY:
        print(f"| {way} | {counts[way]:.0f} | {counts[way] - counts['off']:+.0f} |")
    print("\n| per request, no query | instructions |\n| --- | --- |")
    for way in ("request-off", "request-on"):
        print(f"| {way} | {counts[way]:.0f} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--loop"]:
        loop(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["--time"]:
        print(time_one(sys.argv[2]))
    elif sys.argv[1:2] == ["--instructions"]:
        instructions()
    else:
        timed()
