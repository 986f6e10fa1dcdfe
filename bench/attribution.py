"""Where this layer's instructions go: bare against ours, per Python function, by callgrind.

    python bench/attribution.py              # writes bench/results/attribution.md (~40 min)
    python bench/attribution.py bare ours    # the totals of some variants only (the
                                             # attribution itself is always bare and ours)

Two kinds of run, both bench/instructions.py's loop (PERF-NOTES's method: per request =
(count at 300 requests - count at 100) / 200, the writer thread drained, its clock stopped):

- plain runs: the instructions per request of each variant (bare, ours, the three peers),
  as bench/instructions.py counts them, and the share of CPython's cyclic garbage
  collector (callgrind's inclusive cost of gc_collect_main: collections come with
  allocations, so a layer that allocates more pays for more of them);
- attributed runs (bare and ours): every Python frame runs through a trampoline of its own
  node in the calling-context tree (bench/calltree.py), so each function's inclusive and
  self instructions are known at each place it is called from. CPython then stops inlining
  Python-to-Python calls, so these runs cost more per request than plain ones: the tables
  give their own totals, and the shares are what to read. They run with the collector
  off: its walk would be charged to whichever function happened to allocate last.

Each node's self instructions are charged to a group: our code by module (the module's own
bytecode and the C it calls), and code of Django, the standard library or
prometheus-client to the group of the nearest frame of ours above it: the Django or
logging work our code causes. Below our middleware, the rest of the request (the next
middleware, the view) is Django's again. What runs outside our frames is compared with
bare function by function: the work our settings cause there (the view's own log line
is written, not dropped at the root logger's WARNING).

The section after LEVERS_MARKER in attribution.md is the log of levers tried, kept as it is
when the file is written again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import calltree
from bench.instructions import HIGH, LOW, METHODS, VARIANTS, count_instructions

RESULTS = Path(__file__).resolve().parent / "results" / "attribution.md"
LEVERS_MARKER = "<!-- levers: everything below is kept when bench/attribution.py runs again -->"
JOBS = int(os.environ.get("BENCH_JOBS", "2"))
TOP = 25

Path_ = tuple[str, ...]
#: Per request: a calling-context path -> (inclusive, self) instructions.
Costs = dict[Path_, tuple[float, float]]

#: Our modules in groups, by the start of their path under observability/ (first match).
OUR_GROUPS = (
    (
        ("middleware.py", "http/lifecycle.py", "http/reuse.py", "compat.py", "conf"),
        "middleware, lifecycle, settings",
    ),
    (("http/emit.py", "http/sampling.py"), "line hand-off (emit, sampling)"),
    (("tracing/",), "request reading: IDs, client, trace, route, context"),
    (("masking/",), "masking"),
    (("lines/", "formatters.py", "json_formatter.py", "ecs_formatter.py"), "line formatting"),
    (
        (
            "filters.py",
            "handlers.py",
            "guard/",
            "output/records.py",
            "output/loggers.py",
            "events.py",
        ),
        "logging filters and handlers",
    ),
    (("output/",), "writer (queue, thread, files)"),
    (("monitoring/",), "metrics"),
    (("",), "other (spans, sentry, otel)"),
)
OUTSIDE = "outside our frames"
#: Where our middleware calls the rest of the request (the next middleware, the view).
MIDDLEWARE_CALLS = ("(RequestLoggingMiddleware.__call__)", "(RequestLoggingMiddleware.__acall__)")


def short(file: str) -> str:
    """A function's file as a reader knows it (site-packages and the stdlib's prefix cut)."""
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    root = str(Path(__file__).resolve().parents[1]) + "/"
    return file.removeprefix(root)


def library(file: str) -> str:
    """Whose code a file is: observability, bench, logging, stdlib, or a package's name."""
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0]
    name = short(file)
    if name.startswith(("observability/", "bench/")):
        return name.split("/", 1)[0]
    return "logging" if name.startswith("logging/") else "stdlib"


def our_group(file: str) -> str:
    module = short(file).removeprefix("observability/")
    return next(name for prefixes, name in OUR_GROUPS if module.startswith(prefixes))


def attributed_run(variant: str, method: str, count: int, work: Path) -> tuple[Costs, int]:
    out = work / f"{variant}-{method}-{count}.callgrind"
    nodes = work / f"{variant}-{method}-{count}.nodes"
    total = count_instructions(variant, method, count, out, nodes)
    root, _ = calltree.read_tree(nodes, out)
    costs: Costs = {}
    for path, node in calltree.walk(root):
        costs[path] = (node.inclusive, node.self_cost)
    return costs, total


def per_request(low: Costs, high: Costs) -> Costs:
    span = HIGH - LOW
    result: Costs = {}
    for path, (inclusive, own) in high.items():
        low_inclusive, low_own = low.get(path, (0, 0))
        result[path] = ((inclusive - low_inclusive) / span, (own - low_own) / span)
    return result


def file_of(function: str) -> str:
    return function.rsplit(":", 1)[0]


def name_of(function: str) -> str:
    file, rest = function.rsplit(":", 1)
    return f"{short(file)}:{rest}"


def owner(path: Path_) -> str:
    """Whose work a node is: our module's group, or OUTSIDE (Django's request, the view).

    Our code is its module's; other code the group of the nearest frame of ours above it,
    except below our middleware's call of the next middleware: that is Django's request.
    """
    group = OUTSIDE
    previous = ""
    for function in path:
        file = file_of(function)
        if library(file) == "observability":
            group = our_group(file)
        elif previous.endswith(MIDDLEWARE_CALLS):
            group = OUTSIDE
        previous = function
    return group


def thread_of(path: Path_) -> str:
    return "request" if path[0].endswith("(loop.<locals>.request)") else "writer and flush"


def summarise(costs: Costs) -> dict[str, float]:
    """Self instructions by (thread, group, library)."""
    sums: dict[str, float] = defaultdict(float)
    for path, (_, own) in costs.items():
        sums[f"{thread_of(path)}|{owner(path)}|{library(file_of(path[-1]))}"] += own
    return sums


def by_function(costs: Costs, keep: Callable[[Path_], bool]) -> dict[str, tuple[float, float]]:
    """Inclusive (outermost calls only: recursion counted once) and self, per function."""
    result: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for path, (inclusive, own) in costs.items():
        if not keep(path):
            continue
        function = path[-1]
        if function not in path[:-1]:
            result[function][0] += inclusive
        result[function][1] += own
    return {function: (values[0], values[1]) for function, values in result.items()}


def million(value: float) -> str:
    return f"{value / 1e6:.3f} M"


def thousand(value: float) -> str:
    return f"{value / 1e3:,.1f} k"


#: A variant's (instructions, of which cyclic GC) per request, by (variant, method).
Totals = dict[tuple[str, str], tuple[float, float]]
GC = "gc_collect_main"  # CPython's collector: its inclusive cost is every collection's


def plain_totals(variants: Iterable[str], work: Path) -> Totals:
    jobs = [(v, m, c) for m in METHODS for v in variants for c in (LOW, HIGH)]

    def run(job: tuple[str, str, int]) -> tuple[int, int]:
        variant, method, count = job
        out = work / f"plain-{variant}-{method}-{count}.out"
        total = count_instructions(variant, method, count, out)
        collections, _ = calltree.callee_costs(out, lambda name: name == GC)
        return total, collections.get(GC, 0)

    with ThreadPoolExecutor(JOBS) as pool:
        counts = dict(zip(jobs, pool.map(run, jobs), strict=True))
    totals = {}
    for variant in variants:
        for method in METHODS:
            (low, low_gc), (high, high_gc) = (
                counts[variant, method, LOW],
                counts[variant, method, HIGH],
            )
            span = HIGH - LOW
            totals[variant, method] = ((high - low) / span, (high_gc - low_gc) / span)
            result = {
                "variant": variant,
                "method": method,
                "instructions": round((high - low) / span),
            }
            print(json.dumps(result), flush=True)
    return totals


def attributed(work: Path) -> dict[tuple[str, str], tuple[Costs, float]]:
    calltree.build()  # once, before the runs share it
    jobs = [(v, m, c) for m in METHODS for v in ("bare", "ours") for c in (LOW, HIGH)]
    with ThreadPoolExecutor(JOBS) as pool:
        runs = dict(zip(jobs, pool.map(lambda job: attributed_run(*job, work), jobs), strict=True))
    result = {}
    for variant in ("bare", "ours"):
        for method in METHODS:
            low, low_total = runs[variant, method, LOW]
            high, high_total = runs[variant, method, HIGH]
            result[variant, method] = (
                per_request(low, high),
                (high_total - low_total) / (HIGH - LOW),
            )
    return result


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


Runs = dict[tuple[str, str], tuple[Costs, float]]


def totals_section(totals: Totals) -> list[str]:
    out = ["## Instructions per request, every variant (plain runs)", ""]
    rows = []
    for variant in (v for v in VARIANTS if (v, METHODS[0]) in totals):
        row = [variant]
        for method in METHODS:
            (value, collections), bare = totals[variant, method], totals.get(("bare", method))
            row += [
                million(value),
                f"{value / bare[0]:.3f}" if bare else "-",
                thousand(collections),
            ]
        rows.append(row)
    header = [f"{m}{c}" for m in METHODS for c in ("", " ratio", " of which cyclic GC")]
    out += table(["variant", *header], rows)
    if ("bare", METHODS[0]) in totals and ("ours", METHODS[0]) in totals:
        extra = ", ".join(
            f"{m} {thousand(totals['ours', m][0] - totals['bare', m][0])} "
            f"(cyclic GC {thousand(totals['ours', m][1] - totals['bare', m][1])})"
            for m in METHODS
        )
        out += [f"Ours over bare: {extra} instructions per request.", ""]
    return out


def groups_section(runs: Runs) -> list[str]:
    summaries = {key: summarise(costs) for key, (costs, _) in runs.items()}

    def difference(method: str, match: Callable[[list[str]], bool]) -> float:
        ours = sum(v for k, v in summaries["ours", method].items() if match(k.split("|")))
        bare = sum(v for k, v in summaries["bare", method].items() if match(k.split("|")))
        return ours - bare

    attributed_totals = "; ".join(
        f"{m} bare {million(runs['bare', m][1])}, ours {million(runs['ours', m][1])}"
        for m in METHODS
    )
    out = [
        "## Where ours' extra goes (attributed runs, self instructions per request, ours - bare)",
        "",
        "Attributed runs cost more than plain ones (every Python call goes through its "
        f"trampoline, none is inlined): {attributed_totals}. They run without the cyclic "
        "garbage collector (a collection's cost would fall on whichever function allocated "
        "last): its share is the plain runs' column above.",
        "",
    ]
    groups = [name for _, name in OUR_GROUPS] + [OUTSIDE]
    rows = [
        [group, *[thousand(difference(m, lambda key, g=group: key[1] == g)) for m in METHODS]]
        for group in groups
    ]
    rows.append(
        ["**total**", *[f"**{thousand(difference(m, lambda key: True))}**" for m in METHODS]]
    )
    out += ["### By group (both threads)", ""]
    out += table(["group", *METHODS], rows)
    keys = sorted(
        {tuple(key.split("|")) for summary in summaries.values() for key in summary},
        key=lambda key: (key[1] == OUTSIDE, key[0], key[1], key[2] != "observability", key[2]),
    )
    rows = []
    for thread, group, lib in keys:
        values = [difference(m, lambda key, k=[thread, group, lib]: key == k) for m in METHODS]
        if all(abs(value) < 500 for value in values):
            continue
        if lib == "observability":
            what = "our code"
        elif group == OUTSIDE:
            what = lib
        else:
            what = f"{lib}, called from our code"
        rows.append([thread, group, what, *[thousand(value) for value in values]])
    out += ["### By thread, group and library (rows under 0.5 k left out)", ""]
    out += table(["thread", "group", "code", *METHODS], rows)
    return out


def function_rows(functions: dict[str, tuple[float, float]], column: int) -> list[list[str]]:
    chosen = sorted(functions.items(), key=lambda item: -item[1][column])[:TOP]
    return [[f"`{name_of(fn)}`", thousand(incl), thousand(own)] for fn, (incl, own) in chosen]


def functions_section(method: str, runs: Runs) -> list[str]:
    costs = runs["ours", method][0]
    ours = by_function(costs, lambda path: library(file_of(path[-1])) == "observability")
    out = [f"## Our functions, {method} (attributed run, per request)", ""]
    out += [f"By self instructions (top {TOP}):", ""]
    out += table(["function", "inclusive", "self"], function_rows(ours, 1))
    out += [f"By inclusive instructions (top {TOP}):", ""]
    out += table(["function", "inclusive", "self"], function_rows(ours, 0))
    called: dict[str, tuple[float, str]] = {}
    for path, (_, own) in costs.items():
        group = owner(path)
        if group != OUTSIDE and library(file_of(path[-1])) != "observability":
            called[path[-1]] = (called.get(path[-1], (0.0, ""))[0] + own, group)
    chosen = sorted(called.items(), key=lambda item: -item[1][0])[:TOP]
    out += [
        f"Code of Django, the standard library and packages that our code calls (top {TOP}):",
        "",
    ]
    out += table(
        ["function", "called from", "self"],
        [[f"`{name_of(fn)}`", group, thousand(own)] for fn, (own, group) in chosen],
    )
    outside_ours = by_function(costs, lambda path: owner(path) == OUTSIDE)
    outside_bare = by_function(runs["bare", method][0], lambda path: owner(path) == OUTSIDE)
    rows = []
    for fn in sorted(
        set(outside_ours) | set(outside_bare),
        key=lambda fn: -abs(outside_ours.get(fn, (0, 0))[1] - outside_bare.get(fn, (0, 0))[1]),
    )[:15]:
        ours_incl, ours_self = outside_ours.get(fn, (0.0, 0.0))
        bare_incl, bare_self = outside_bare.get(fn, (0.0, 0.0))
        if abs(ours_self - bare_self) >= 100:
            rows.append(
                [
                    f"`{name_of(fn)}`",
                    thousand(bare_self),
                    thousand(ours_self),
                    thousand(ours_self - bare_self),
                    thousand(ours_incl - bare_incl),
                ]
            )
    out += ["Outside our frames, the functions whose self instructions differ most from bare:", ""]
    out += table(
        ["function", "bare self", "ours self", "self, ours - bare", "inclusive, ours - bare"], rows
    )
    return out


def report(totals: Totals, runs: Runs) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    out = [
        "# Where the instructions go: bare against this layer",
        "",
        f"Written by `python bench/attribution.py` at commit {commit or 'unknown'} (callgrind; "
        f"per request = (count at {HIGH} requests - count at {LOW}) / {HIGH - LOW}, the writer "
        "thread included; counts do not depend on how busy the machine was). "
        "Method and grouping: the docstring of bench/attribution.py.",
        "",
    ]
    out += totals_section(totals)
    out += groups_section(runs)
    for method in METHODS:
        out += functions_section(method, runs)
    return "\n".join(out)


def write(text: str) -> None:
    kept = ""
    if RESULTS.exists():
        previous = RESULTS.read_text()
        if LEVERS_MARKER in previous:
            kept = previous.split(LEVERS_MARKER, 1)[1]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text + "\n" + LEVERS_MARKER + (kept or "\n\n## Levers tried\n"))


def main(variants: list[str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-attribution-"))
    totals = plain_totals(variants, work)
    runs = attributed(work)
    text = report(totals, runs)
    print(text)
    write(text)


if __name__ == "__main__":
    chosen = sys.argv[1:] or VARIANTS
    unknown = set(chosen) - set(VARIANTS)
    if unknown:
        sys.exit(f"unknown variants: {', '.join(sorted(unknown))} (known: {', '.join(VARIANTS)})")
    main(chosen)
