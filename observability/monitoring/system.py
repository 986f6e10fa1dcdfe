"""What the metrics read from the operating system: the log file system, this process.

- The file system holding the log files: free and total bytes and inodes, read with one
  `statvfs()` per directory at each scrape (the scraping process reads it for every
  worker: they share the directory).
- This process's CPU time, resident memory and open files, for prometheus-client's
  multiprocess mode, which has no process collector: each worker publishes its own on
  the writer's tick (at most once a second) and the exposition adds them up
  (`observability.monitoring.metrics`). Linux only (`/proc`); elsewhere only the CPU time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

FILESYSTEM_PREFIX = "observability_log_filesystem_"
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class ProcessReading:
    """One reading of this process: None where the system does not tell."""

    cpu_seconds: float
    resident_bytes: int | None
    open_fds: int | None


def read_process() -> ProcessReading:
    """This process's CPU time (user + system), resident memory and open file descriptors."""
    times = os.times()
    resident: int | None
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident = int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        resident = None
    try:
        open_fds: int | None = len(os.listdir("/proc/self/fd")) - 1  # less listdir's own
    except OSError:
        open_fds = None
    return ProcessReading(times.user + times.system, resident, open_fds)


def log_directories(targets: Iterable[Any]) -> list[str]:
    """The directories the log handlers write to (one per file system is enough)."""
    found: dict[str, None] = {}
    for target in targets:
        filename = getattr(target, "baseFilename", None)
        if filename:
            found[os.path.dirname(str(filename))] = None
    return sorted(found)


def _existing(directory: str) -> str:
    """The directory, or its nearest existing parent (the handlers make it on first write)."""
    path = directory
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


class LogFilesystemCollector(Collector):
    """Gauges of the log directory's file system, read when scraped (one statvfs each).

    No label: the logs have one directory (LOG_BASE_DIR). Were they spread over several
    file systems, the one with the fewest bytes free is the one shown, the first to fill.
    """

    def __init__(self, directories: Iterable[str]) -> None:
        self.directories = list(directories)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        fullest: os.statvfs_result | None = None
        for directory in self.directories:
            try:
                stat = os.statvfs(_existing(directory))
            except OSError:  # unreadable: no sample rather than a wrong one
                continue
            if (
                fullest is None
                or stat.f_bavail * stat.f_frsize < fullest.f_bavail * fullest.f_frsize
            ):
                fullest = stat
        if fullest is None:
            return
        families = {
            "avail_bytes": "Bytes free for the server's user on the log directory's file system.",
            "size_bytes": "Size in bytes of the log directory's file system.",
            "files_free": "Free inodes (files) on the log directory's file system.",
            "files": "Inodes (files) of the log directory's file system (0: no fixed number).",
        }
        values = {
            "avail_bytes": fullest.f_bavail * fullest.f_frsize,
            "size_bytes": fullest.f_blocks * fullest.f_frsize,
            "files_free": fullest.f_ffree,
            "files": fullest.f_files,
        }
        for key, text in families.items():
            yield GaugeMetricFamily(f"{FILESYSTEM_PREFIX}{key}", text, value=float(values[key]))
