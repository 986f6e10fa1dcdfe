"""Prometheus metrics of the requests and of the log writer, right under several processes.

    http_server_requests_total{method,route,status}      counter
    http_server_request_duration_seconds{method,route}   histogram (seconds)
    log_records_written_total{file}                      counter (general, requests, ...)
    log_records_dropped_total{reason}                    counter (queue_full, write_error)
    log_queue_records                                    gauge (summed over live processes)

`route` is the URL pattern that matched (`api/v1/payments/<int:pk>/`, `-` for none),
never the raw path; `method` is one of the standard methods or OTHER: no label value is
the client's to invent.

Several processes (gunicorn -w N, uvicorn --workers N) need prometheus-client's
multiprocess mode: PROMETHEUS_MULTIPROC_DIR set before prometheus_client is imported
(our config/gunicorn.conf.py and `make serve-asgi` do it). Each process then writes its
values to files there and `render()` merges them, so a scrape answered by any worker
counts every worker. Without it (one process, tests) the default registry serves.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import weakref
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder

from observability.conf import obs_settings
from observability.writer import BatchTarget, every_tick, report, writer

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
OTHER_METHOD = "OTHER"


def multiprocess_dir() -> str | None:
    """The multiprocess directory, when this process runs in multiprocess mode."""
    return os.environ.get(MULTIPROC_ENV) or None


class Instruments:
    """The metrics of one process, registered once in the default registry."""

    def __init__(self) -> None:
        self.requests = Counter(
            "http_server_requests",
            "HTTP requests answered, by method, route (URL pattern) and status.",
            ("method", "route", "status"),
        )
        self.duration = Histogram(
            "http_server_request_duration_seconds",
            "Time from the request's arrival at the middleware to its response, in seconds.",
            ("method", "route"),
        )
        self.written = Counter("log_records_written", "Log records written, by file.", ("file",))
        self.dropped = Counter(
            "log_records_dropped",
            "Log records lost: queue_full (the writer fell behind), write_error (disk).",
            ("reason",),
        )
        for reason in ("queue_full", "write_error"):
            self.dropped.labels(reason)  # shown at 0 from the start
        self.queue = Gauge(
            "log_queue_records",
            "Log records waiting for the writer thread.",
            multiprocess_mode="livesum",
        )
        # (count it, observe its duration) for each (method, route, status) seen
        self.children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        # What the writer's counters were when last copied into the metrics.
        self.seen_written: weakref.WeakKeyDictionary[BatchTarget, int] = weakref.WeakKeyDictionary()
        self.seen_dropped = {"queue_full": 0, "write_error": 0}
        self.lock = threading.Lock()

    def observe(self, method: str, route: str, status: int, duration: float) -> None:
        key = (method if method in METHODS else OTHER_METHOD, route, status)
        children = self.children.get(key)
        if children is None:
            children = self.children[key] = (
                self.requests.labels(key[0], route, str(status)).inc,
                self.duration.labels(key[0], route).observe,
            )
        children[0]()
        children[1](duration)

    def sync(self) -> None:
        """Copy the writer's counters (plain integers on its hot path) into the metrics."""
        with self.lock:
            targets = list(writer.targets)
            for target in targets:
                count = target.written
                delta = count - self.seen_written.get(target, 0)
                if delta > 0:
                    self.written.labels(file_label(target)).inc(delta)
                self.seen_written[target] = count
            for reason, count in (
                ("queue_full", writer.dropped),
                ("write_error", sum(target.dropped for target in targets)),
            ):
                delta = count - self.seen_dropped[reason]
                if delta > 0:
                    self.dropped.labels(reason).inc(delta)
                self.seen_dropped[reason] = count
            self.queue.set(writer.queued())

    def after_fork_in_child(self) -> None:
        # What the parent wrote before the fork is the parent's to count.
        self.lock = threading.Lock()
        self.seen_dropped = {"queue_full": 0, "write_error": 0}  # the writer's reset too
        for target in list(writer.targets):
            self.seen_written[target] = target.written


def file_label(target: Any) -> str:
    """The file a handler writes, as tagged in LOG_FILES ("requests_file" -> "requests")."""
    name = getattr(target, "name", None)
    if name:
        return str(name).removesuffix("_file")
    filename = getattr(target, "baseFilename", None)
    return os.path.basename(filename) if filename else type(target).__name__


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
                made = Instruments()
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


def observe_request(method: str, route: str, status: int, duration: float) -> None:
    """Count one answered request; never raises (metrics must not break a request)."""
    if not obs_settings.METRICS:
        return
    made = _instruments if _instruments is not None else instruments()
    if made is None:
        return
    try:
        made.observe(method, route, status, duration)
    except Exception as exc:
        global _observe_failures
        _observe_failures += 1
        if _observe_failures == 1:  # once: the same fault would repeat on every request
            report(f"metrics: cannot count a request: {exc.__class__.__name__}: {exc}")


def _sync_on_tick(final: bool) -> None:
    if _instruments is not None:
        _instruments.sync()


every_tick(_sync_on_tick)


def render(accept: str = "") -> tuple[bytes, str]:
    """Every process's metrics in the format the Accept header asks for, and its content type.

    Prometheus' text format 0.0.4 unless the scraper asks for OpenMetrics or a newer
    text version (prometheus-client's own negotiation).
    """
    made = instruments()
    if made is not None:
        made.sync()  # this process's writer figures as of now
    registry = REGISTRY
    directory = multiprocess_dir()
    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
