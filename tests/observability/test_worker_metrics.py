"""The Celery worker's own /metrics (observability.background.worker_metrics), in process.

The WSGI app's policy is the web's /metrics': the allowed addresses or the bearer token,
anyone else the 404 of an unknown path and a `metrics_access_refused` event; the server
on a real socket of 127.0.0.1 (started by the worker's signals, stopped by them, bounded).
A real prefork worker serving it: tests/e2e/test_worker_metrics.py.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import select
import socket
import urllib.error
import urllib.request
from wsgiref.util import setup_testing_defaults

import pytest
from celery import signals

from observability.background import worker_metrics
from observability.background.worker_metrics import MAX_CONNECTIONS, metrics_app, serve, stop
from observability.monitoring.metrics import observe_task
from tests.conftest import NOT_SLOW
from tests.e2e.servers import free_port
from tests.polling import DEADLINE, poll_until, wait_for

pytestmark = pytest.mark.django_db

TOKEN = "worker-metrics-token-0123456789"
COUNT = 'celery_task_duration_seconds_count{outcome="succeeded",task_name="probe.counted"}'


@pytest.fixture(autouse=True)
def _counted_task_and_no_server():
    """A task counted in this process (its name is the label); no server left behind."""
    observe_task("probe.counted", "succeeded", 0.01)
    yield
    stop()


def call(
    method: str = "GET", path: str = "/metrics", remote: str = "127.0.0.1", **headers: str
) -> tuple[str, dict[str, str], bytes]:
    """(status, headers, body) of one request to the WSGI app, as wsgiref would make it."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "REMOTE_ADDR": remote,
        "wsgi.input": io.BytesIO(b""),
        **headers,
    }
    setup_testing_defaults(environ)
    answer: dict[str, object] = {}

    def start_response(status: str, header_list: list[tuple[str, str]]) -> None:
        answer.update(status=status, headers=dict(header_list))

    body = b"".join(metrics_app(environ, start_response))
    return str(answer["status"]), answer["headers"], body  # type: ignore[return-value]


def refusals(logs) -> list[str]:
    return [line for line in logs.lines("security") if "metrics_access_refused" in line]


class TestPolicy:
    def test_an_allowed_address_reads_the_task_metric_never_cached(self, logs):
        status, headers, body = call(remote="127.0.0.1")
        assert status == "200 OK"
        assert COUNT.encode() in body
        assert headers["Cache-Control"] == "no-store"
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert call(remote="::1")[0] == "200 OK"
        assert refusals(logs) == []

    def test_another_address_gets_a_404_and_a_security_event_with_its_ip(self, logs):
        status, _, body = call(remote="203.0.113.5")
        assert status == "404 Not Found"
        assert b"celery_task" not in body
        (event,) = refusals(logs)
        assert "reason=address_not_allowed " in event and "ip=203.0.113.5 " in event
        assert call(path="/nothing-here", remote="203.0.113.5")[2] == body  # the same 404

    def test_a_forwarded_header_never_opens_it_even_behind_trusted_proxies(self, settings, logs):
        """No proxy sits in front of the worker's port: X-Forwarded-For is the client's own."""
        settings.OBSERVABILITY = {**NOT_SLOW, "TRUSTED_PROXIES": 1}
        status, _, _ = call(remote="203.0.113.5", HTTP_X_FORWARDED_FOR="127.0.0.1")
        assert status == "404 Not Found"
        (event,) = refusals(logs)
        assert "ip=203.0.113.5 " in event

    def test_the_bearer_token_opens_it_and_a_wrong_one_is_refused(self, settings, logs):
        settings.OBSERVABILITY = {**NOT_SLOW, "METRICS_TOKEN": TOKEN}
        far = "198.51.100.20"
        status, _, body = call(remote=far, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert status == "200 OK" and COUNT.encode() in body
        status, _, _ = call(remote=far, HTTP_AUTHORIZATION=f"Bearer {TOKEN}x")
        assert status == "404 Not Found"
        (event,) = refusals(logs)
        assert "reason=wrong_token " in event and f"ip={far} " in event
        assert TOKEN not in logs.everything()

    def test_only_get_and_head(self, logs):
        status, headers, _ = call("POST")
        assert status == "405 Method Not Allowed"
        assert headers["Allow"] == "GET, HEAD"
        status, headers, body = call("HEAD")
        assert status == "200 OK" and body == b"" and int(headers["Content-Length"]) > 0
        assert refusals(logs) == []

    @pytest.mark.parametrize(
        "accept",
        [
            "application/openmetrics-text; version=x",
            "text/plain; version=1.x",
            "application/openmetrics-text; version=4111111111111111",
            "application/openmetrics-text; version=1.0.0.0",
        ],
    )
    def test_an_accept_version_it_cannot_read_gets_the_text_format(self, accept, logs):
        """A version prometheus-client cannot compare ("1.x": a TypeError, wsgiref's 500 with
        Python's version in its Server header) or would echo in the Content-Type (a card
        number): the text format 0.0.4, as for no Accept at all."""
        status, headers, body = call(HTTP_ACCEPT=accept)
        assert status == "200 OK" and COUNT.encode() in body
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        openmetrics = "application/openmetrics-text;version=1.0.0;q=0.6,text/plain;q=0.3"
        assert call(HTTP_ACCEPT=openmetrics)[1]["Content-Type"].startswith(
            "application/openmetrics-text; version=1.0.0;"
        )

    @pytest.mark.parametrize("path", ["/", "/metrics/", "/metrics/x", "/api/v1/payments/"])
    def test_any_other_path_is_a_404_without_metrics(self, path):
        status, _, body = call(path=path)
        assert status == "404 Not Found" and b"celery_task" not in body

    def test_metrics_off_is_a_404_and_no_port(self, settings, logs):
        settings.OBSERVABILITY = {
            **NOT_SLOW,
            "METRICS": False,
            "CELERY_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
        }
        assert call()[0] == "404 Not Found"
        signals.worker_ready.send(sender=None)
        assert worker_metrics.served() is None
        assert refusals(logs) == []


def get(port: int, path: str = "/metrics") -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def scraped(port: int) -> bool:
    """Whether a scrape is answered 200 now. A connection closed unanswered is "not yet":
    the server hangs up on a client while MAX_CONNECTIONS are busy, and the slots of clients
    that just left are free only once their threads have ended."""
    try:
        return get(port)[0] == 200
    except (ConnectionError, http.client.HTTPException):
        return False


class TestServer:
    def test_worker_ready_serves_on_the_address_and_worker_shutdown_closes_it(self, settings):
        port = free_port()
        settings.OBSERVABILITY = {**NOT_SLOW, "CELERY_METRICS_ADDRESS": f"127.0.0.1:{port}"}
        signals.worker_ready.send(sender=None)
        assert worker_metrics.served() is not None
        status, body = get(port)
        assert status == 200 and COUNT.encode() in body
        assert get(port, "/")[0] == 404
        signals.worker_shutdown.send(sender=None)
        assert worker_metrics.served() is None
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=10).close()

    def test_the_address_unset_serves_nothing(self, settings):
        settings.OBSERVABILITY = {**NOT_SLOW, "CELERY_METRICS_ADDRESS": None}
        signals.worker_ready.send(sender=None)
        assert worker_metrics.served() is None

    def test_a_port_already_taken_is_one_error_line_naming_the_address(self, logs):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            address = f"127.0.0.1:{taken.getsockname()[1]}"
            assert serve(address) is None
            (line,) = [x for x in logs.lines("errors") if "Worker metrics" in x]
        assert " ERROR " in line
        assert f"cannot listen on {address} (Address already in use)" in line
        assert worker_metrics.served() is None

    def test_ipv6_loopback(self):
        port = free_port()
        try:
            server = serve(f"[::1]:{port}")
        except OSError:  # pragma: no cover - a host without IPv6
            pytest.skip("no IPv6 loopback here")
        if server is None:
            pytest.skip("no IPv6 loopback here")
        with socket.create_connection(("::1", port), timeout=10) as sock:
            sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
        assert answer.startswith(b"HTTP/1.0 200 ") and COUNT.encode() in answer
        head = answer.split(b"\r\n\r\n", 1)[0]
        assert b"\r\nServer: worker-metrics" in head and b"Python" not in head

    def test_a_forked_child_closes_its_copy_of_the_port(self):
        """A prefork pool process is forked from the worker's main process: it must not keep
        the listening socket (the port would outlive the main process's server)."""
        server = serve(f"127.0.0.1:{free_port()}")
        assert server is not None
        pid = os.fork()
        if pid == 0:  # the child: report and leave at once
            os._exit(0 if worker_metrics.served() is None and server.socket.fileno() == -1 else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert worker_metrics.served() is server and server.socket.fileno() != -1

    def test_at_most_max_connections_at_once_and_a_silent_client_is_dropped(self, monkeypatch):
        monkeypatch.setattr(worker_metrics._Handler, "timeout", DEADLINE * 4)
        port = free_port()
        assert serve(f"127.0.0.1:{port}") is not None
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CONNECTIONS)]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as one_more:
                assert one_more.recv(1) == b""  # closed unanswered, at once
        finally:
            for sock in idle:
                sock.close()
        # The idle connections gone, their slots are free again.
        wait_for(lambda: scraped(port), "a scrape after the idle clients left")

    def test_a_client_that_sends_nothing_is_dropped_after_the_timeout(self, monkeypatch):
        assert worker_metrics._Handler.timeout == worker_metrics.TIMEOUT > 0
        monkeypatch.setattr(worker_metrics._Handler, "timeout", 0.2)
        port = free_port()
        assert serve(f"127.0.0.1:{port}") is not None
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as silent:
            assert silent.recv(1) == b""  # the server hung up on it
        assert poll_until(lambda: scraped(port))

    def test_a_client_that_trickles_its_request_is_dropped_at_the_timeout(self, monkeypatch):
        """TIMEOUT bounds the whole request, not each read of it: MAX_CONNECTIONS clients that
        each send a byte of a long header more often than TIMEOUT would otherwise hold every
        slot for ever (a connection never silent for TIMEOUT), and Prometheus be refused."""
        monkeypatch.setattr(worker_metrics._Handler, "timeout", 1.0)
        port = free_port()
        assert serve(f"127.0.0.1:{port}") is not None
        request = b"GET /metrics HTTP/1.0\r\nX-Pad: " + b"a" * 60_000
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CONNECTIONS)]
        sent = [0] * len(slow)
        open_ = set(range(len(slow)))

        def trickle() -> None:
            """Wait up to 50 ms for the server to hang up on someone, then one more byte
            from each client it has not hung up on."""
            readable, _, _ = select.select([slow[i] for i in open_], [], [], 0.05)
            for sock in readable:
                with contextlib.suppress(OSError):
                    if sock.recv(1) == b"":
                        open_.discard(slow.index(sock))
            for i in open_:
                with contextlib.suppress(OSError):
                    slow[i].sendall(request[sent[i] : sent[i] + 1])
                    sent[i] += 1

        try:
            assert poll_until(lambda: not open_, between=trickle), (
                f"{len(open_)} trickling clients still held after {max(sent)} bytes each"
            )
            wait_for(lambda: scraped(port), "a scrape once the trickling clients were dropped")
        finally:
            for sock in slow:
                sock.close()

    def test_a_scrape_that_fails_is_a_500_of_ours_and_a_masked_error_line(
        self, monkeypatch, logs, capsys
    ):
        """Not wsgiref's 500 (a Server header naming Python's version, the traceback raw on
        stderr): the app's own answer, and the exception on the errors file, masked."""

        def broken(accept: str) -> tuple[bytes, str]:
            raise ValueError("directory 4111111111111111 doesn't exist")

        monkeypatch.setattr(worker_metrics, "render", broken)
        port = free_port()
        assert serve(f"127.0.0.1:{port}") is not None
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
            sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
        head = answer.split(b"\r\n\r\n", 1)[0]
        assert head.startswith(b"HTTP/1.0 500 ")
        assert b"\r\nServer: worker-metrics" in head and b"Python" not in head
        (line,) = [x for x in logs.lines("errors") if "Worker metrics: a scrape failed" in x]
        assert " ERROR " in line
        assert "4111111111111111" not in logs.everything()
        assert "ValueError" in logs.everything()
        assert "4111111111111111" not in capsys.readouterr().err
        assert get(port)[0] == 500  # the server goes on
