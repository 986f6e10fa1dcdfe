"""With OpenTelemetry's SDK and Django instrumentation: records carry the active span's IDs."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from observability.testing import capture_records
from tests.conftest import parse_tokens

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider(resource=Resource.create({"service.name": "billing-api-test"}))
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


@pytest.fixture
def instrumented():
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(PROVIDER)
    EXPORTER.clear()
    DjangoInstrumentor().instrument(tracer_provider=PROVIDER)
    yield EXPORTER
    DjangoInstrumentor().uninstrument()


def test_records_carry_the_active_spans_ids(logs, instrumented):
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with capture_records("billing.views") as records:
        response = Client().get("/t/plain/", HTTP_TRACEPARENT=traceparent)
    (span,) = [s for s in instrumented.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    trace_id = format(span.context.trace_id, "032x")
    span_id = format(span.context.span_id, "016x")
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"  # OpenTelemetry adopted it too
    lines = [
        line
        for line in logs.lines("requests") + logs.lines("general")
        if f"request_id={response['X-Request-ID']} " in line
    ]
    assert len(lines) == 3
    for line in lines:
        tokens = parse_tokens(line)
        assert (tokens["trace_id"], tokens["span_id"]) == (trace_id, span_id)
        assert "otelTraceID" not in tokens  # our formats show trace_id/span_id once
    assert response["traceresponse"] == f"00-{trace_id}-{span_id}-01"
    (view_record,) = [r for r in records if r.message == "plain view ran"]
    assert view_record.fields["trace_id"] == trace_id


def test_records_have_logging_instrumentors_attribute_names(logs, instrumented):
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    handler = Keep()
    from observability.filters import RequestContextFilter

    handler.addFilter(RequestContextFilter())
    logging.getLogger("billing").addHandler(handler)
    try:
        Client().get("/t/plain/")
    finally:
        logging.getLogger("billing").removeHandler(handler)
    (record,) = [r for r in seen if r.getMessage() == "plain view ran"]
    assert record.otelTraceID == record.trace_id and len(record.otelTraceID) == 32
    assert record.otelSpanID == record.span_id
    assert record.otelTraceSampled is True
    assert record.otelServiceName == "billing-api-test"
    formatted = logging.Formatter(
        "%(message)s trace_id=%(otelTraceID)s span_id=%(otelSpanID)s service=%(otelServiceName)s"
    ).format(record)
    assert formatted.endswith("service=billing-api-test")


def test_outside_a_request_the_attributes_are_zero():
    from observability.filters import RequestContextFilter

    record = logging.LogRecord("x", logging.INFO, "p", 1, "m", (), None)
    RequestContextFilter().filter(record)
    assert (record.otelTraceID, record.otelSpanID, record.otelTraceSampled) == ("0", "0", False)


def test_request_context_inside_an_active_span_writes_that_spans_trace(logs, instrumented):
    """A job under OpenTelemetry: its records and its outgoing calls carry one trace, the
    active span's (not one of request_context()'s own beside OpenTelemetry's)."""
    from observability import outgoing_headers, request_context

    tracer = PROVIDER.get_tracer("tests")
    with (
        tracer.start_as_current_span("nightly-invoices") as span,
        request_context(request_id="job-otel-1"),
    ):
        logging.getLogger("billing.views").info("invoicing")
        headers = outgoing_headers()
    trace_id = format(span.get_span_context().trace_id, "032x")
    span_id = format(span.get_span_context().span_id, "016x")
    (line,) = [line for line in logs.lines("general") if "request_id=job-otel-1 " in line]
    tokens = parse_tokens(line)
    assert (tokens["trace_id"], tokens["span_id"]) == (trace_id, span_id)
    assert headers["traceparent"].startswith(f"00-{trace_id}-{span_id}-")  # its flags
    # Without a span, request_context() still makes a trace of its own.
    with request_context(request_id="job-plain-1") as context:
        assert context["trace_id"] not in (trace_id, "-")
