"""The metrics of one process: what they are, their labels, and how the hot paths feed them.

`monitoring.metrics` makes one `Instruments` per process and is the API the layer calls;
this module holds the instruments (OpenTelemetry's HTTP server metrics and the layer's
own) and the per-process readings published under several workers (`ProcessInstruments`);
`monitoring.labels` bounds their label values (`_OTHER`, `_static`, `_unmatched`).
"""

from __future__ import annotations

import collections
import os
import threading
import time
import weakref
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from observability.conf import obs_settings
from observability.monitoring.labels import (
    EVENT_TYPE,
    EVENT_TYPES_LIMIT,
    METHODS,
    OTHER,
    QUEUE_FILE,
    SEVERITIES,
    file_label,
)
from observability.monitoring.system import read_process
from observability.output.writer import BatchTarget, writer

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: http.server.request.duration's advised bucket boundaries, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
#: The view whose requests are scrapes, not traffic (route_of's name for it).
SCRAPE_VIEW = "observability.metrics_view.metrics_view"
PROCESS_INTERVAL = 1.0  # seconds between two readings of this process's CPU, memory, files


def multiprocess_dir() -> str | None:
    """The multiprocess directory, when this process runs in multiprocess mode."""
    return os.environ.get(MULTIPROC_ENV) or None


class ProcessInstruments:
    """This worker's CPU, memory and open files, summed over workers by the exposition.

    Multiprocess mode only, and kept out of the default registry, whose own process
    collector has these names (the exposition reads the multiprocess files instead).
    """

    def __init__(self) -> None:
        self.cpu = Counter(
            "process_cpu_seconds",
            "CPU seconds (user + system) of every worker process of this server, "
            "exited ones included.",
            registry=None,
        )
        self.resident = Gauge(
            "process_resident_memory_bytes",
            "Resident memory of the live worker processes, summed.",
            multiprocess_mode="livesum",
            registry=None,
        )
        self.open_fds = Gauge(
            "process_open_fds",
            "Open file descriptors of the live worker processes, summed.",
            multiprocess_mode="livesum",
            registry=None,
        )
        self.workers = Gauge(
            "observability_worker_processes",
            "Live worker processes publishing metrics.",
            multiprocess_mode="livesum",
            registry=None,
        )
        self.after_fork_in_child()

    def after_fork_in_child(self) -> None:
        self.cpu_seen = 0.0  # a child's CPU time starts at 0
        self.next_reading = 0.0
        self.marked = False

    def publish(self, now: float) -> None:
        """Read this process and publish it, at most every PROCESS_INTERVAL (now=inf: now)."""
        if now < self.next_reading:
            return
        self.next_reading = time.monotonic() + PROCESS_INTERVAL
        if not self.marked:
            self.workers.set(1)
            self.marked = True
        reading = read_process()
        delta = reading.cpu_seconds - self.cpu_seen
        if delta > 0:
            self.cpu.inc(delta)
            self.cpu_seen = reading.cpu_seconds
        if reading.resident_bytes is not None:
            self.resident.set(reading.resident_bytes)
        if reading.open_fds is not None:
            self.open_fds.set(reading.open_fds)


class Instruments:
    """The metrics of one process, registered once in the default registry."""

    def __init__(self, *, processes: bool) -> None:
        self.duration = Histogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests: from the middleware's start to the response.",
            ("http_request_method", "http_route", "http_response_status_code"),
            buckets=DURATION_BUCKETS,
        )
        self.active = Gauge(
            "http_server_active_requests",
            "HTTP server requests in flight.",
            ("http_request_method",),
            multiprocess_mode="livesum",
        )
        self.tasks = Histogram(
            "celery_task_duration_seconds",
            "Duration of background task runs, by task name and outcome "
            "(succeeded, failed, retried).",
            ("task_name", "outcome"),
            buckets=DURATION_BUCKETS,
        )
        self.slow = Counter(
            "observability_slow_requests",
            "Requests at or over SLOW_REQUEST_THRESHOLD, by route.",
            ("http_route",),
        )
        self.sampled_out = Counter(
            "observability_requests_sampled_out",
            "Fast successful requests whose lifecycle lines SAMPLE_RATE left out.",
        )
        self.security = Counter(
            "observability_security_events",
            "Security events logged, counted before flood control.",
            ("event_type", "severity"),
        )
        self.flood_summaries = Counter(
            "observability_flood_summaries", "Flood-control summary lines written."
        )
        self.flood_repeated = Counter(
            "observability_flood_repeated_records",
            "Records flood control folded into summaries (the sum of their repeated=).",
        )
        self.written = Counter(
            "observability_log_records_written", "Log records written, by file.", ("file",)
        )
        self.dropped = Counter(
            "observability_log_records_dropped",
            "Log records lost: queue_full (the writer fell behind; file _queue), "
            "write_error (the file could not be written).",
            ("file", "reason"),
        )
        self.dropped.labels(QUEUE_FILE, "queue_full")  # shown at 0 from the start
        self.queue = Gauge(
            "observability_log_queue_records",
            "Log records waiting for the writer thread.",
            multiprocess_mode="livesum",
        )
        self.process = ProcessInstruments() if processes else None
        self.lock = threading.Lock()
        # Histogram children by label values, made once.
        self.observers: dict[tuple[str, str, int], Callable[[float], None]] = {}
        self.event_types: set[str] = set()
        # Requests in flight: one deque per method, an item per request (append and pop
        # are atomic), published to the gauge on each tick and scrape: a prometheus-client
        # gauge's inc and dec, each a locked (or mmap'ed) write, cost several times more.
        self.in_flight: dict[str, collections.deque[None]] = {}
        self.scraping: dict[str, int] = {}  # scrapes in flight: not traffic
        self.published: dict[str, int] = {}
        self.unsynced_sampled_out = 0
        # What the writer's counters were when last copied into the metrics.
        self.seen_written: weakref.WeakKeyDictionary[BatchTarget, int] = weakref.WeakKeyDictionary()
        self.seen_failed: weakref.WeakKeyDictionary[BatchTarget, int] = weakref.WeakKeyDictionary()
        self.seen_queue_full = 0

    def observe(self, method: str, route: str, status: int, duration: float) -> None:
        method = method if method in METHODS else OTHER
        key = (method, route, status)
        observe = self.observers.get(key)
        if observe is None:
            observe = self.duration.labels(method, route, str(status)).observe
            self.observers[key] = observe
        observe(duration)
        if duration >= obs_settings.SLOW_REQUEST_THRESHOLD:
            self.slow.labels(route).inc()

    def started(self, method: str) -> Callable[[], None]:
        method = method if method in METHODS else OTHER
        requests = self.in_flight.get(method)
        if requests is None:
            with self.lock:
                requests = self.in_flight.setdefault(method, collections.deque())
        requests.append(None)
        return requests.pop

    def publish_in_flight(self) -> None:
        """Set the gauge to the requests in flight, scrapes left out (under the lock)."""
        for method, requests in list(self.in_flight.items()):
            count = len(requests) - self.scraping.get(method, 0)
            if self.published.get(method) != count:
                self.active.labels(method).set(count)
                self.published[method] = count

    def security_event(self, event_type: str, severity: str) -> None:
        if event_type not in self.event_types:
            if len(self.event_types) >= EVENT_TYPES_LIMIT or not EVENT_TYPE.fullmatch(event_type):
                event_type = OTHER
            else:
                self.event_types.add(event_type)
        self.security.labels(event_type, severity if severity in SEVERITIES else OTHER).inc()

    def sync(self, *, now: float) -> None:
        """Copy the plain counters of the hot paths (the writer's, sampling's) into the metrics."""
        with self.lock:
            sampled_out, self.unsynced_sampled_out = self.unsynced_sampled_out, 0
            targets = list(writer.targets)
            for target in targets:
                name = file_label(target)
                count = target.written
                delta = count - self.seen_written.get(target, 0)
                if delta > 0:
                    self.written.labels(name).inc(delta)
                self.seen_written[target] = count
                failed = self.dropped.labels(name, "write_error")  # at 0 from the start
                delta = target.dropped - self.seen_failed.get(target, 0)
                if delta > 0:
                    failed.inc(delta)
                self.seen_failed[target] = target.dropped
            delta = writer.dropped - self.seen_queue_full
            if delta > 0:
                self.dropped.labels(QUEUE_FILE, "queue_full").inc(delta)
            self.seen_queue_full = writer.dropped
            self.queue.set(writer.queued())
            if sampled_out:
                self.sampled_out.inc(sampled_out)
            self.publish_in_flight()
            if self.process is not None:
                self.process.publish(now)

    def after_fork_in_child(self) -> None:
        # What the parent wrote before the fork is the parent's to count.
        self.lock = threading.Lock()
        self.unsynced_sampled_out = 0
        self.in_flight, self.scraping, self.published = {}, {}, {}
        self.seen_queue_full = 0  # the writer's reset too
        for target in list(writer.targets):
            self.seen_written[target] = target.written
            self.seen_failed[target] = target.dropped
        if self.process is not None:
            self.process.after_fork_in_child()
