"""The originating request's context, rebuilt from an event row: its ID and its trace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from billing.models import WebhookEvent
from observability import request_context
from observability.tracecontext import parse_traceparent


@contextmanager
def originating_context(event: WebhookEvent) -> Iterator[None]:
    """Publish inside this block and the task carries the event's request, not the caller's."""
    fields: dict[str, str] = {}
    parent = parse_traceparent(event.traceparent)
    if parent is not None:
        fields = {"trace_id": parent.trace_id, "span_id": parent.parent_id}
    with request_context(request_id=event.request_id or None, **fields):
        yield
