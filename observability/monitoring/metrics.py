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
import contextlib
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from observability.conf import obs_settings
from observability.monitoring.instruments import SCRAPE_VIEW, Instruments, multiprocess_dir
from observability.monitoring.labels import METHODS, OTHER, file_label, route_label
from observability.monitoring.system import LogFilesystemCollector, log_directories
from observability.output.writer import every_tick, report, writer
from observability.tracing.context import request_scope

__all__ = [
    "count_flood_summary",
    "count_sampled_out",
    "count_security_event",
    "file_label",
    "instruments",
    "multiprocess_dir",
    "observe_request",
    "observe_task",
    "render",
    "request_started",
    "start_process_metrics",
]

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


def observe_task(task_name: str, outcome: str, duration: float) -> None:
    """Count one task run (its name is a registered task's: a bounded label)."""
    made = _made()
    if made is None:
        return
    try:
        made.tasks.labels(task_name, outcome).observe(duration)
    except Exception as exc:
        _failed("count a task", exc)


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


_VERSION = re.compile(r"version=([^;,]*)")
_READABLE_VERSION = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){0,2}")


def _readable(accept: str) -> str:
    """The Accept header for prometheus-client's negotiation, or "" (its text format 0.0.4)
    when a version there is not a short dotted number: it compares "1.x" with (1, 0, 0), a
    TypeError, and echoes any other in the Content-Type ("version=4111111111111111")."""
    for version in _VERSION.findall(accept):
        if _READABLE_VERSION.fullmatch(version.strip()) is None:
            return ""
    return accept


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
        encoder, content_type = choose_encoder(_readable(accept))
        return encoder(cast("CollectorRegistry", exposition)), content_type
    finally:
        if made is not None and scrape is not None:
            with made.lock:
                made.scraping[scrape] -= 1
