"""A Celery worker's own /metrics: its tasks' metrics, served by the worker's main process.

A worker serves no HTTP, so the task metrics it records would be on no /metrics at all.
With OBSERVABILITY['CELERY_METRICS_ADDRESS'] = "host:port", the main process of `celery
worker` serves GET /metrics there once the worker is ready (`worker_ready`; never in a pool
child, never at import), on a daemon thread: the stdlib's wsgiref, a thread per connection,
at most MAX_CONNECTIONS at once, each given TIMEOUT seconds to send its whole request. It stops on
`worker_shutdown`. An address that cannot be bound is one ERROR line; the worker goes on.

Under prefork the tasks run in child processes: their values reach the main process only
through PROMETHEUS_MULTIPROC_DIR (`make worker` gives each run a fresh one), and a child
that exits is marked dead, so its live gauges stop counting.

The web's policy (observability.metrics_view): METRICS_ALLOWED_IPS or the bearer
METRICS_TOKEN; anyone else the 404 of an unknown path and a `metrics_access_refused`
security event. No proxy sits in front of this port: the client is the socket's peer,
X-Forwarded-For is never read, whatever TRUSTED_PROXIES says.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from django.core.handlers.wsgi import WSGIRequest
from django.db import connections
from prometheus_client import multiprocess

from observability.conf import obs_settings
from observability.conf_checks import parse_address
from observability.metrics_view import refused
from observability.monitoring.instruments import multiprocess_dir
from observability.monitoring.metrics import render
from observability.output.loggers import get_logger

__all__ = ["MAX_CONNECTIONS", "TIMEOUT", "install", "metrics_app", "serve", "served", "stop"]

PATH = "/metrics"
MAX_CONNECTIONS = 8  # connections served at once; one more is closed unanswered
TIMEOUT = 10.0  # seconds a connection has to send its whole request (a slow client is dropped)
_UID = "observability.background.worker_metrics"
SERVER = ("Server", "worker-metrics")  # not wsgiref's default, which names Python's version

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_served: tuple[_Server, threading.Thread] | None = None
_fork_hook = False


def _answer(
    start_response: StartResponse, status: str, body: bytes, *extra: tuple[str, str]
) -> list[bytes]:
    headers = [SERVER, ("Content-Type", "text/plain; charset=utf-8"), *extra]
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


def metrics_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI app: every process's metrics to whoever the web's /metrics serves; the 404 of
    an unknown path (and a security event) to anyone else; 405 to a method other than GET
    and HEAD; a 500 of its own when the scrape fails (the exception on the errors file, not
    wsgiref's answer: a traceback raw on stderr, a Server header naming Python's version)."""
    try:
        return _app(environ, start_response)
    except Exception:
        get_logger("APP_LOGGER").exception("Worker metrics: a scrape failed")
        return _answer(start_response, "500 Internal Server Error", b"Internal Server Error\n")


def _app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ.get("PATH_INFO") != PATH:
        return _answer(start_response, "404 Not Found", b"Not Found\n")
    environ.pop("HTTP_X_FORWARDED_FOR", None)  # no proxy in front: the peer is the client
    request = WSGIRequest(environ)
    if refused(request):  # audited there, as the web's /metrics
        return _answer(start_response, "404 Not Found", b"Not Found\n")
    if request.method not in ("GET", "HEAD"):
        allow = ("Allow", "GET, HEAD")
        return _answer(start_response, "405 Method Not Allowed", b"Method Not Allowed\n", allow)
    body, content_type = render(str(environ.get("HTTP_ACCEPT", "")))
    start_response(
        "200 OK",
        [
            SERVER,
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [] if request.method == "HEAD" else [body]


class _Deadline(io.RawIOBase):
    """The connection's bytes, each read given what is left of `seconds` from the first: a
    client that sends its request a byte at a time, never silent for `seconds`, is dropped
    when they are up all the same (a socket's timeout bounds one read only)."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        super().__init__()
        self._sock, self._seconds = sock, seconds
        self._end = time.monotonic() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request was not sent in time")
        self._sock.settimeout(left)
        try:
            return self._sock.recv_into(buffer)
        finally:
            with contextlib.suppress(OSError):
                self._sock.settimeout(self._seconds)  # the answer's writes: a timeout each


class _Handler(WSGIRequestHandler):
    timeout = TIMEOUT
    server_version, sys_version = SERVER[1], ""  # in http.server's own errors (a 414)

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket's own reader: ours reads it under the deadline
        self.rfile = io.BufferedReader(_Deadline(self.connection, self.timeout))

    def log_message(self, format: str, *args: Any) -> None:
        """No access line on stderr: a refusal is a security event, a scrape is not traffic."""


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, ipv6: bool) -> None:
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__((host, port), _Handler)
        self.set_app(metrics_app)

    def server_bind(self) -> None:
        # TCPServer's bind, not HTTPServer's: that one looks the host up in DNS (getfqdn),
        # which can hang the worker's start on a host without a resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]
        self.setup_environ()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # MAX_CONNECTIONS busy: closed unanswered
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            try:
                connections.close_all()  # a security event may have used the database cache
            finally:
                self.slots.release()  # whatever closing did: a lost slot is never given back

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out or went away: nothing to report. (The app answers its own
        exceptions: metrics_app.)"""


def serve(address: str) -> _Server | None:
    """Serve /metrics on `address` ("host:port", "[::1]:port") from a daemon thread of this
    process; None, and one ERROR line naming the address, when it cannot be bound."""
    global _served, _fork_hook
    stop()
    parsed = parse_address(address)
    if parsed is None:
        msg = f"not a listening address host:port: {address!r}"
        raise ValueError(msg)
    try:
        server = _Server(*parsed)
    except OSError as exc:
        get_logger("APP_LOGGER").error(
            "Worker metrics not served: cannot listen on %s (%s); tasks run on without them",
            address,
            exc.strerror or exc,
        )
        return None
    thread = threading.Thread(
        target=server.serve_forever, name="worker-metrics", kwargs={"poll_interval": 0.5}
    )
    thread.daemon = True
    _served = (server, thread)
    if not _fork_hook:
        os.register_at_fork(after_in_child=_forget_in_child)
        _fork_hook = True
    thread.start()
    get_logger("APP_LOGGER").info("Worker metrics served on http://%s%s", address, PATH)
    return server


def served() -> _Server | None:
    """The server of this process, if it serves."""
    return None if _served is None else _served[0]


def stop() -> None:
    """Stop serving and close the port (waits for the serving loop, not for scrapes)."""
    global _served
    current, _served = _served, None
    if current is not None:
        server, thread = current
        server.shutdown()
        server.server_close()
        thread.join(5)


def _forget_in_child() -> None:
    """A forked child (a pool process, beat) holds a copy of the listening socket: close it,
    so that the port is the main process's alone and closes with it."""
    global _served
    if _served is not None:
        with contextlib.suppress(OSError):
            _served[0].socket.close()
        _served = None


def _on_worker_ready(**kwargs: Any) -> None:
    address = obs_settings.CELERY_METRICS_ADDRESS
    if address is not None and obs_settings.METRICS:
        serve(address)


def _on_worker_shutdown(**kwargs: Any) -> None:
    stop()


def _on_child_shutdown(pid: Any = None, **kwargs: Any) -> None:
    """A pool child leaving: its live gauges (memory, open files, queue) no longer count;
    its counters and histograms stay in the directory and keep counting."""
    directory = multiprocess_dir()
    if directory:
        with contextlib.suppress(Exception):  # the directory may be gone already
            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                int(pid) if isinstance(pid, int) else os.getpid(), directory
            )


def install() -> None:
    """Connect to the worker's signals (once): serve when ready, stop on shutdown."""
    from celery import signals

    signals.worker_ready.connect(_on_worker_ready, weak=False, dispatch_uid=_UID)
    signals.worker_shutdown.connect(_on_worker_shutdown, weak=False, dispatch_uid=_UID)
    signals.worker_process_shutdown.connect(_on_child_shutdown, weak=False, dispatch_uid=_UID)
