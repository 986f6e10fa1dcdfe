"""One record per outgoing HTTP call made through the integrations (observability.clients).

    Outgoing call GET ledger.internal: 200 in 12.410 ms | ... event_type=http_call
        call_method=GET call_host=ledger.internal call_path=/api/entries call_status=200
        duration=0.01241 child_span_id=<the span ID sent in traceparent>

`child_span_id` is the parent ID of the `traceparent` the call sent: the downstream
service's records name it as their parent span, so the two sides join. The path is
masked (card numbers, the redaction policy) and capped; the query string is not written.
A call that raised is a WARNING with its error's class name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from observability.conf import obs_settings
from observability.masking.escaping import PATH_LIMIT
from observability.masking.redaction import get_redactor
from observability.output.loggers import level_of
from observability.spans.span import error_name, span_record
from observability.tracing.tracecontext import parse_traceparent


def record_call(
    method: str,
    url: str,
    headers: Mapping[str, str],
    status: int | None,
    error: BaseException | None,
    seconds: float,
) -> None:
    """Write the call's record (SPAN_LOGGER, SPAN_LEVEL; WARNING when it raised)."""
    parts = urlsplit(url)
    redactor = get_redactor()
    host = redactor.text(parts.netloc.rpartition("@")[2], 255)  # never the userinfo
    path = redactor.text(parts.path or "/", PATH_LIMIT)
    parent = parse_traceparent(headers.get("traceparent"))
    fields: dict[str, Any] = {
        "event_type": "http_call",
        "call_method": method,
        "call_host": host,
        "call_path": path,
        "call_status": status,
        "duration": round(seconds, 6),
    }
    if error is not None:
        fields["error"] = error_name(error)
    level = level_of(obs_settings.SPAN_LEVEL) or logging.INFO
    if error is not None:
        level = max(level, logging.WARNING)
    outcome = status if error is None else fields["error"]
    message = "Outgoing call %s %s: %s in %.3f ms"
    args = (method, host, outcome, seconds * 1000)
    span_id = parent.parent_id if parent is not None else None
    span_record(level, message, args, fields, span_id=span_id, stacklevel=3)


class Outcome:
    """What a call answered: set `status` once the response is in."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status: int | None = None


@contextmanager
def recorded(method: str, url: str, headers: Mapping[str, str]) -> Iterator[Outcome]:
    """Time the block (one call) and record it, with the error's class if it raised.

    with recorded(request.method, str(request.url), request.headers) as outcome:
        response = send(request)
        outcome.status = response.status_code
    """
    outcome = Outcome()
    started = time.perf_counter()
    try:
        yield outcome
    except BaseException as exc:
        record_call(method, url, headers, None, exc, time.perf_counter() - started)
        raise
    record_call(method, url, headers, outcome.status, None, time.perf_counter() - started)
