"""Prometheus metrics of the requests and of the layer itself, right under several processes.

Requests, named after OpenTelemetry's HTTP server conventions as Prometheus exposes them:

    http_server_request_duration_seconds{http_request_method,http_route,
                                         http_response_status_code}   histogram (OTel buckets)
    http_server_active_requests{http_request_method}                  gauge

The layer's own, under `observability_`: log records written and dropped (by file and
reason), the writer's queue, flood-control summaries, sampled-out requests, slow requests
by route, security events by type and severity, and the log directory's file system.
Under several processes also `process_cpu_seconds_total`, `process_resident_memory_bytes`
and `process_open_fds`, summed over the workers (prometheus-client's multiprocess mode
has no process collector of its own).

Label values are bounded, whatever a client sends: `http_route` is the URL pattern that
matched, shown readably (`ops/requests/<request_id>/`), or `_static` (a static file
WhiteNoise answered) or `_unmatched` (no pattern matched: 404s, redirects and errors of
middleware that answered before the router); `http_request_method` is a method of
RFC 9110 or PATCH, else `_OTHER`. Scrapes of /metrics are not counted as traffic.

Several processes (gunicorn -w N, uvicorn --workers N) need prometheus-client's
multiprocess mode: PROMETHEUS_MULTIPROC_DIR set before prometheus_client is imported
(our config/gunicorn.conf.py and `make serve-asgi` do it). Each process then writes its
values to files there and `render()` merges them, so a scrape answered by any worker
counts every worker. Without it (one process, tests) the default registry serves.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import urlsplit

from django.core.signals import setting_changed
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from observability.conf import obs_settings
from observability.context import EMPTY, request_scope
from observability.metrics_system import LogFilesystemCollector, log_directories, read_process
from observability.writer import BatchTarget, every_tick, report, writer

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: http.request.method's known values (RFC 9110 and PATCH); anything else is OTHER.
METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
OTHER = "_OTHER"
STATIC_ROUTE = "_static"
UNMATCHED_ROUTE = "_unmatched"
#: The dropped records' `file` when the shared queue was full (it is every file's).
QUEUE_FILE = "_queue"
#: http.server.request.duration's advised bucket boundaries, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
#: The view whose requests are scrapes, not traffic (route_of's name for it).
SCRAPE_VIEW = "observability.metrics_view.metrics_view"
PROCESS_INTERVAL = 1.0  # seconds between two readings of this process's CPU, memory, files
SEVERITIES = frozenset({"debug", "info", "low", "warning", "medium", "error", "high", "critical"})
_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
EVENT_TYPES_LIMIT = 100  # distinct event types a process labels; past it, OTHER


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
            if len(self.event_types) >= EVENT_TYPES_LIMIT or not _EVENT_TYPE.fullmatch(event_type):
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


def file_label(target: Any) -> str:
    """The file a handler writes, as tagged in LOG_FILES ("requests_file" -> "requests")."""
    name = getattr(target, "name", None)
    if name:
        return str(name).removesuffix("_file")
    filename = getattr(target, "baseFilename", None)
    return os.path.basename(filename) if filename else type(target).__name__


def route_label(route: str, status: int, path: str) -> str:
    """The http_route of a request: its pattern, or `_static` / `_unmatched` without one."""
    if route != EMPTY:
        return route
    if status != 404 and path:
        prefix = _static_prefix()
        if prefix and path.startswith(prefix):
            return STATIC_ROUTE  # WhiteNoise answered before the router ran
    return UNMATCHED_ROUTE


_static: list[str] = []  # the path prefix of STATIC_URL, once known


def _static_prefix() -> str:
    """STATIC_URL's path ("/static/"), "" when it has none; remembered until it changes."""
    if not _static:
        from django.conf import settings

        path = urlsplit(str(getattr(settings, "STATIC_URL", None) or "")).path
        _static.append("/" + path.lstrip("/") if path.strip("/") else "")
    return _static[0]


def _forget_static_prefix(*, setting: str, **kwargs: Any) -> None:
    if setting in ("STATIC_URL", "FORCE_SCRIPT_NAME"):
        _static.clear()


setting_changed.connect(_forget_static_prefix)


_instruments: Instruments | None = None
_init_lock = threading.Lock()
_failed_at = 0.0
_observe_failures = 0


def instruments() -> Instruments | None:
    """This process's metrics, made on first use; None if they cannot be (reported once)."""
    global _instruments, _failed_at
    if _instruments is not None:
        return _instruments
    with _init_lock:
        if _instruments is None and not _failed_at:
            try:
                directory = multiprocess_dir()
                if directory:
                    os.makedirs(directory, exist_ok=True)
                    atexit.register(_leave, directory)
                made = Instruments(processes=bool(directory))
                os.register_at_fork(after_in_child=made.after_fork_in_child)
                _instruments = made
            except Exception as exc:
                _failed_at = time.monotonic()
                report(f"metrics are off: {exc.__class__.__name__}: {exc}")
    return _instruments


def _leave(directory: str) -> None:
    """At exit: this process's live gauges no longer count (gunicorn's master does it too)."""
    with contextlib.suppress(Exception):  # the directory may be gone already
        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


def _made() -> Instruments | None:
    if not obs_settings.METRICS:
        return None
    return _instruments if _instruments is not None else instruments()


def _failed(what: str, exc: Exception) -> None:
    global _observe_failures
    _observe_failures += 1
    if _observe_failures == 1:  # once: the same fault would repeat on every request
        report(f"metrics: cannot {what}: {exc.__class__.__name__}: {exc}")


def request_started(method: str) -> Callable[[], None] | None:
    """Count a request in flight; returns what to call when it ends (None: not counted)."""
    made = _made()
    return None if made is None else made.started(method)


def observe_request(
    method: str, route: str, status: int, duration: float, *, view: str = "", path: str = ""
) -> None:
    """Count one answered request (never a scrape of /metrics); never raises."""
    if view == SCRAPE_VIEW:
        return
    made = _made()
    if made is None:
        return
    try:
        made.observe(method, route_label(route, status, path), status, duration)
    except Exception as exc:
        _failed("count a request", exc)


def count_sampled_out() -> None:
    """Count a request whose lifecycle lines sampling left out (moved to the metric on tick)."""
    made = _made()
    if made is not None:
        with made.lock:
            made.unsynced_sampled_out += 1


def count_security_event(event_type: str, severity: str) -> None:
    """Count one security event, before flood control decides whether its line is written."""
    made = _made()
    if made is None:
        return
    try:
        made.security_event(str(event_type), str(severity).lower())
    except Exception as exc:
        _failed("count a security event", exc)


def count_flood_summary(repeated: int) -> None:
    """Count one flood-control summary line standing for `repeated` records."""
    made = _made()
    if made is None:
        return
    try:
        made.flood_summaries.inc()
        made.flood_repeated.inc(max(int(repeated), 0))
    except Exception as exc:
        _failed("count a flood summary", exc)


def start_process_metrics() -> None:
    """Publish this worker's process metrics now and on every tick (gunicorn's post_worker_init)."""
    made = _made()
    if made is not None:
        made.sync(now=math.inf)
        writer.start()


def _sync_on_tick(final: bool) -> None:
    if _instruments is not None:
        _instruments.sync(now=time.monotonic())


every_tick(_sync_on_tick)


class _Exposition:
    """The registry's metrics and the ones read at scrape time, as one collector."""

    def __init__(self, *parts: Any) -> None:
        self.parts = parts

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            yield from part.collect()


def render(accept: str = "", request: Any = None) -> tuple[bytes, str]:
    """Every process's metrics in the format the Accept header asks for, and its content type.

    Prometheus' text format 0.0.4 unless the scraper asks for OpenMetrics or a newer
    text version (prometheus-client's own negotiation). `request`: the scrape's own
    request, which is then left out of the requests in flight.
    """
    made = instruments()
    scrape = None
    if made is not None:
        if request is not None and request_scope.get() is not None:
            scrape = str(getattr(request, "method", ""))  # the middleware counted it in flight
            scrape = scrape if scrape in METHODS else OTHER
            with made.lock:
                made.scraping[scrape] = made.scraping.get(scrape, 0) + 1
        made.sync(now=math.inf)  # this process's figures as of now
    try:
        registry: Any = REGISTRY
        directory = multiprocess_dir()
        if directory:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        exposition = _Exposition(registry, LogFilesystemCollector(log_directories(writer.targets)))
        encoder, content_type = choose_encoder(accept)
        return encoder(cast("CollectorRegistry", exposition)), content_type
    finally:
        if made is not None and scrape is not None:
            with made.lock:
                made.scraping[scrape] -= 1
