"""µs per KB of Redactor.text(): the engine before issue #10 (bench/_old_redaction.py) and now.

Ordinary input (a user agent, a path with a query, a log message) at its own size, then
adversarial input at 1 KB, 16 KB, 256 KB and 1 MB, printed as markdown tables. Each cell
is the least CPU time (time.process_time) of three rounds, each round enough calls to
last ~20 ms. A cell whose projected time passes --budget seconds is skipped and the
projection printed instead (the old JWT pattern is quadratic: 1 MB would take hours).

    .venv/bin/python bench/redaction_bench.py [--budget 5] [--sizes 1,16,256,1024]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _old_redaction as old
from observability.conf import DEFAULT_REDACT_KEYS
from observability.masking import redaction as new

ORDINARY = {
    "user agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "path + query": "/api/v1/payments/8842/refunds/?page=2&ordering=-created_at",
    "log message": "Payment 8842 captured for customer 311: amount=129.99 EUR, "
    "plan=pro-monthly, status=succeeded",
    "message, non-ASCII": "Zahlung 8842 für Kundin Müller erfasst: Betrag 129,99 €",
    "Django Not Found": "Not Found: /api/v1/caf\\xe9/r\\u00e9sum\\u00e9/8842/",
}

# name -> the unit repeated to the size (a tuple: head, unit, tail around the repeats)
ADVERSARIAL: dict[str, tuple[str, str, str]] = {
    "'eyJ' * N": ("", "eyJ", ""),
    "'eyJa.' * N": ("", "eyJa.", ""),
    "'1 ' * N": ("", "1 ", ""),
    "'4' + ' ' * N + '1'": ("4", " ", "1"),
    "('4' + ' ' * 1023) * N": ("", "4" + " " * 1023, ""),
    "'4111 1111 1111a' * N": ("", "4111 1111 1111a", ""),
    "('1' * 64 + 'a') * N": ("", "1" * 64 + "a", ""),
    "'a=' * N": ("", "a=", ""),
    "'a=' * N + ' password=x'": ("", "a=", " password=x"),
    "'password=' * N": ("", "password=", ""),
    "'\\\\u0034' * N": ("", "\\u0034", ""),
    "'\\\\u4111 ' * N": ("", "\\u4111 ", ""),
    "('\\\\U00000034' + ' ' * 64) * N": ("", "\\U00000034" + " " * 64, ""),
    "'1' * N": ("", "1", ""),
    "'-' * N": ("", "-", ""),
    "'api_key: \"' * N": ("", 'api_key: "', ""),
    "'Bearer ' * N": ("", "Bearer ", ""),
    "mix": ("", 'eyJa.1 a=password: "\\u0034-x 4111.', ""),
}


def build(spec: tuple[str, str, str], size: int) -> str:
    head, unit, tail = spec
    body = size - len(head) - len(tail)
    return head + (unit * (body // len(unit) + 1))[:body] + tail


def cost(function: Callable[[str], str], text: str) -> float:
    """Seconds of CPU for one call: the least of three rounds of ~20 ms each."""
    start = time.process_time()
    function(text)
    once = time.process_time() - start
    if once > 0.2:
        return once
    calls = max(1, int(0.02 / max(once, 1e-7)))
    best = once
    for _ in range(3):
        start = time.process_time()
        for _ in range(calls):
            function(text)
        best = min(best, (time.process_time() - start) / calls)
    return best


def fmt(us_per_kb: float) -> str:
    return f"{us_per_kb:,.1f}" if us_per_kb < 100 else f"{us_per_kb:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=5.0, help="seconds a cell may take")
    parser.add_argument("--sizes", default="1,16,256,1024", help="KB, comma-separated")
    options = parser.parse_args()
    sizes = [int(size) * 1024 for size in options.sizes.split(",")]
    engines = {
        "old": old.Redactor(DEFAULT_REDACT_KEYS).text,
        "new": new.Redactor(DEFAULT_REDACT_KEYS).text,
    }

    print("### Ordinary input (µs per call, µs per KB)\n")
    print("| input | chars | old µs | new µs | old µs/KB | new µs/KB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, text in ORDINARY.items():
        times = {engine: cost(function, text) * 1e6 for engine, function in engines.items()}
        per_kb = {engine: value / (len(text) / 1024) for engine, value in times.items()}
        print(
            f"| {name} | {len(text)} | {times['old']:.1f} | {times['new']:.1f} "
            f"| {fmt(per_kb['old'])} | {fmt(per_kb['new'])} |"
        )

    header = " | ".join(f"{size // 1024:,} KB" for size in sizes)
    print("\n### Adversarial input (µs per KB)\n")
    print(f"| input | engine | {header} |")
    print("| --- | --- |" + " ---: |" * len(sizes))
    for name, spec in ADVERSARIAL.items():
        for engine, function in engines.items():
            cells: list[str] = []
            previous: tuple[int, float] | None = None
            exponent = 2.0  # assume the worst until two sizes have been measured
            for size in sizes:
                if previous is not None:
                    projected = previous[1] * (size / previous[0]) ** exponent
                    if projected > options.budget:
                        cells.append(f"skipped (~{projected:,.0f} s)")
                        continue
                seconds = cost(function, build(spec, size))
                if previous is not None and previous[1] > 1e-3:
                    growth = seconds / previous[1]
                    exponent = min(2.0, max(1.0, _log(growth) / _log(size / previous[0])))
                previous = (size, seconds)
                cells.append(fmt(seconds * 1e6 / (size / 1024)))
            print(f"| {name} | {engine} | " + " | ".join(cells) + " |")


def _log(value: float) -> float:
    return math.log(max(value, 1e-9))


if __name__ == "__main__":
    main()
