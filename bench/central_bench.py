"""Shipping to a central rsyslogd on this machine: lines per second, and write -> stored delay.

    .venv/bin/python bench/central_bench.py      # BENCH_LINES=20000 BENCH_RATE=200 by default

A central rsyslogd and one agent, configured by deploy/rsyslog/ (RELP over TLS with a CA
made for the run, the agent's disk queue, imfile polling every second), on 127.0.0.1.

- throughput: BENCH_LINES lines of ~400 bytes appended to billing_api_requests.log at once;
  lines/s = lines / (time from the first write to the last line stored centrally);
- delay: lines written at BENCH_RATE lines/s for BENCH_SECONDS, each holding its write
  time; the central file is polled every 5 ms and each line's arrival time noted:
  median and p99 of (arrival - write).

Prints a table and one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.rsyslog import render  # noqa: E402 (the repository's root first)

RSYSLOGD = "/usr/sbin/rsyslogd"
PAD = "x" * 330
FILE = "billing_api_requests.log"


def start(conf: Path, pid: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [RSYSLOGD, "-n", "-f", str(conf), "-i", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stored_lines(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return handle.read().count(b"\n")
    except FileNotFoundError:
        return 0


def throughput(logs: Path, stored: Path, lines: int) -> float:
    before = stored_lines(stored)
    started = time.monotonic()
    with open(logs / FILE, "a") as handle:
        for n in range(lines):
            handle.write(f"2026-12-02 10:00:00,000 INFO [bench] burst {n} {PAD}\n")
    deadline = started + 600
    while stored_lines(stored) < before + lines and time.monotonic() < deadline:
        time.sleep(0.01)
    return lines / (time.monotonic() - started)


def delays(logs: Path, stored: Path, rate: int, seconds: float) -> list[float]:
    offset = stored.stat().st_size if stored.exists() else 0
    arrived: list[float] = []
    count = int(rate * seconds)
    with open(logs / FILE, "a") as handle, open(stored, "rb") as central:
        central.seek(offset)
        carry = b""
        start = time.time()
        written = 0
        deadline = start + seconds + 120
        while len(arrived) < count and time.time() < deadline:
            due = min(count, int((time.time() - start) * rate) + 1)
            while written < due:
                handle.write(f"2026-12-02 10:00:00,000 INFO [bench] at={time.time():.6f} {PAD}\n")
                handle.flush()
                written += 1
            data = carry + central.read()
            now = time.time()
            *complete, carry = data.split(b"\n")
            for line in complete:
                if b" at=" in line:
                    sent = float(line.split(b" at=")[1].split(b" ")[0])
                    arrived.append(now - sent)
            time.sleep(0.005)
    return arrived


def main() -> int:
    if not Path(RSYSLOGD).exists():
        print("rsyslogd missing: apt-get install rsyslog rsyslog-relp rsyslog-gnutls")
        return 0
    lines = int(os.environ.get("BENCH_LINES", "20000"))
    rate = int(os.environ.get("BENCH_RATE", "200"))
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        certs, logs, root = base / "ca", base / "logs", base / "root"
        logs.mkdir()
        render.make_ca(certs)
        render.make_cert(certs, "central")
        render.make_cert(certs, "bench")
        port = 20000 + os.getpid() % 20000
        (base / "cw").mkdir()
        (base / "aw").mkdir()
        central_conf, agent_conf = base / "central.conf", base / "agent.conf"
        central_conf.write_text(
            render.Central(root, base / "cw", certs, {"bench": port}, address="127.0.0.1").render()
        )
        agent_conf.write_text(
            render.Agent("bench", logs, base / "aw", "127.0.0.1", port, certs).render()
        )
        (logs / FILE).write_text("2026-12-02 10:00:00,000 INFO [bench] first\n")
        central = start(central_conf, base / "c.pid")
        agent = start(agent_conf, base / "a.pid")
        stored = root / "bench" / FILE
        try:
            deadline = time.monotonic() + 60
            while stored_lines(stored) < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            shipped = throughput(logs, stored, lines)
            waits = sorted(delays(logs, stored, rate, seconds))
        finally:
            agent.terminate()
            central.terminate()
            agent.wait(30)
            central.wait(30)
    result = {
        "lines_per_second": round(shipped),
        "burst_lines": lines,
        "delay_rate_lines_per_second": rate,
        "delay_lines": len(waits),
        "delay_median_ms": round(statistics.median(waits) * 1000, 1) if waits else None,
        "delay_p99_ms": round(waits[int(len(waits) * 0.99) - 1] * 1000, 1) if waits else None,
    }
    print(f"{f'shipped (burst of {lines} lines)':40} {result['lines_per_second']:>10} lines/s")
    print(f"{f'write -> stored, median ({rate} lines/s)':40} {result['delay_median_ms']:>10} ms")
    print(f"{'write -> stored, p99':40} {result['delay_p99_ms']:>10} ms")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
