"""The originating request's context, rebuilt from an event row: its ID and its trace."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from billing.models import WebhookEvent
from observability import request_context

# The `traceparent` event_record() stored: ours, version 00 (observability's outgoing_headers).
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


@contextmanager
def originating_context(event: WebhookEvent) -> Iterator[None]:
    """Publish inside this block and the task carries the event's request, not the caller's."""
    fields: dict[str, str] = {}
    match = _TRACEPARENT.fullmatch(event.traceparent)
    if match is not None:
        fields = {"trace_id": match.group(1), "span_id": match.group(2)}
    with request_context(request_id=event.request_id or None, **fields):
        yield
