"""LOG_FORMAT=ecs: Elastic Common Schema lines, written by Elastic's own `ecs-logging` formatter.

The formatter is given a view of each record whose fields carry their ECS names
(`observability.ecs.FIELDS`): `http.request.id`, `trace.id`, `span.id`, `transaction.id`,
`user.id`, `client.ip`, `url.path` ... and, on a request's terminal line,
`http.response.status_code`, `http.response.body.bytes`, `event.duration` (nanoseconds),
`event.outcome`, `event.category` and `event.type`. Other fields go under `labels` as
text. Output is ASCII JSON (every other character escaped), so one record stays one line
whatever a client sent; values are capped as in the other formats.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ecs_logging import StdlibFormatter

from observability import ecs, messages, otel
from observability.context import CONTEXT_FIELDS, EMPTY
from observability.escaping import MESSAGE_LIMIT, VALUE_LIMIT, cap
from observability.records import STANDARD_ATTRS, extra_keys
from observability.textline import render_key

_STANDARD = frozenset(STANDARD_ATTRS) - {"message", "asctime"}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return cap(value, VALUE_LIMIT)
    if isinstance(value, dict | list | tuple):
        return cap(json.dumps(value, default=str, ensure_ascii=False), VALUE_LIMIT)
    return cap(str(value), VALUE_LIMIT)


class EcsFormatter(StdlibFormatter):
    """ecs-logging's StdlibFormatter, fed our fields under their ECS names."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("ensure_ascii", True)
        super().__init__(*args, **kwargs)

    def format_to_ecs(self, record: logging.LogRecord) -> dict[str, Any]:
        result: dict[str, Any] = super().format_to_ecs(self.ecs_view(record))
        result["message"] = cap(record.getMessage(), MESSAGE_LIMIT)
        result.get("log", {}).pop("original", None)  # the message, a second time
        return result

    def ecs_view(self, record: logging.LogRecord) -> logging.LogRecord:
        """A copy of the record whose extra attributes are ECS field names."""
        attrs = record.__dict__
        view = {key: attrs[key] for key in _STANDARD if key in attrs}
        view["exc_info"] = None  # rendered (and masked) by the redaction filter: exc_text
        for key in CONTEXT_FIELDS:
            value = attrs.get(key, EMPTY)
            if value not in (EMPTY, None, ""):
                view[ecs.FIELDS[key]] = _text(value)
        if "span.id" in view:
            view["transaction.id"] = view["span.id"]
        service = otel.service_name() if otel.INSTALLED else ""
        if service:
            view["service.name"] = service
        for key in extra_keys(record):
            value = attrs[key]
            if value is None:
                continue
            name = ecs.FIELDS.get(key)
            if name in ecs.INTEGER_FIELDS:
                if isinstance(value, int) and not isinstance(value, bool):
                    view[name] = value
                    continue
                name = None  # an event's own "status" text: a label, not an HTTP status
            if key == "duration" and isinstance(value, int | float):
                view[ecs.DURATION_FIELD] = int(value * ecs.NANOSECONDS)
            elif name is not None:
                view[name] = _text(value)
            else:
                view[f"{ecs.LABELS}.{render_key(key)}"] = _text(value)
        if record.exc_text:
            view["error.stack_trace"] = record.exc_text
        if "status" in attrs and record.getMessage().startswith(messages.TERMINAL):
            failed = record.levelno >= logging.ERROR
            view["event.outcome"] = "failure" if failed else "success"
            view["event.category"] = ["web"]
            view["event.type"] = ["access", "error"] if failed else ["access"]
        return logging.makeLogRecord(view)
