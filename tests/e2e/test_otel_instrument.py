"""The README's OpenTelemetry recipe, run as written: `opentelemetry-instrument gunicorn
config.wsgi:application -c config/gunicorn.conf.py --workers 2`, DJANGO_SETTINGS_MODULE not
exported, spans sent over OTLP/HTTP to a receiver this test runs (a real HTTP server that
decodes OpenTelemetry's protobuf). Every request answers (no 500 from Django configured
with empty settings); both workers export their spans after the fork; every lifecycle line
carries the trace and span IDs of the span OpenTelemetry exported for its request."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.e2e.servers import BIN, Server, free_port, read_all
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

GATEWAY_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class OtlpReceiver(ThreadingHTTPServer):
    """POST /v1/traces (OTLP/HTTP, protobuf): the spans received, by (trace ID, span ID)."""

    def __init__(self) -> None:
        self.spans: dict[tuple[str, str], dict] = {}
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def received(self) -> dict[tuple[str, str], dict]:
        with self.lock:
            return dict(self.spans)


class _Handler(BaseHTTPRequestHandler):
    server: OtlpReceiver

    def do_POST(self) -> None:  # http.server's name for it
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.server.lock:
            for resource_spans in request.resource_spans:
                service = {
                    a.key: a.value.string_value for a in resource_spans.resource.attributes
                }.get("service.name")
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        key = (span.trace_id.hex(), span.span_id.hex())
                        self.server.spans[key] = {
                            "name": span.name,
                            "kind": span.kind,
                            "service": service,
                        }
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


def lifecycle(log_dir: Path) -> list[dict]:
    return [json.loads(line) for line in read_all(log_dir, "billing_api_requests.log")]


def poll(check, what: str, timeout: float = 20.0):
    return wait_for(check, what, timeout=timeout)


def test_the_opentelemetry_recipe_runs_as_written(tmp_path, env):
    receiver = OtlpReceiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    run_env = {k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"}
    run_env.update(
        PATH=f"{BIN}:{env.get('PATH', '')}",  # `source .venv/bin/activate`
        LOG_FORMAT="json",  # each line names its process: which worker served it
        OTEL_SERVICE_NAME="billing-api",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.server_address[1]}",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="100",  # export within 0.1 s (the default waits 5 s)
    )
    port = free_port()
    command = [
        *("opentelemetry-instrument", "gunicorn", "config.wsgi:application"),
        *("-c", "config/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "--workers", "2"),
    ]
    server = Server(command, run_env, port)  # up once /health/ answers 200
    log_dir = Path(run_env["LOG_BASE_DIR"])
    try:
        token = server.token()  # alice, the demo user
        status, headers, _ = server.request(
            "GET",
            "/api/v1/plans/",
            token=token,
            headers={"traceparent": f"00-{GATEWAY_TRACE}-00f067aa0ba902b7-01"},
        )
        assert status == 200
        assert headers["traceresponse"].startswith(f"00-{GATEWAY_TRACE}-")
        # Until both workers have answered (gunicorn gives a connection to whichever
        # accepts it first), at most 400 requests.
        sent = 2
        while len({line["process"] for line in lifecycle(log_dir)}) < 2 and sent < 400:
            statuses = server.many(
                8, 8, lambda _: server.request("GET", "/api/v1/plans/", token=token)[0]
            )
            assert set(statuses) == {200}
            sent += 8
        completed = poll(
            lambda: (
                [
                    line
                    for line in lifecycle(log_dir)
                    if line["message"].startswith("API Request completed")
                ]
                if len(lifecycle(log_dir)) >= 2 * sent
                else None
            ),
            "every request's lifecycle lines",
        )
        assert len({line["process"] for line in completed}) == 2, "one worker answered everything"
        wanted = {(line["trace_id"], line["span_id"]) for line in completed}
        received = poll(
            lambda: spans if wanted <= set(spans := receiver.received()) else None,
            "OpenTelemetry's spans of every request, from both workers",
        )
        for key in wanted:
            assert received[key]["service"] == "billing-api"
            assert received[key]["kind"] == 2  # SPAN_KIND_SERVER: Django's instrumentation
        assert any(trace_id == GATEWAY_TRACE for trace_id, _ in wanted)
    finally:
        server.stop()
        receiver.shutdown()
