"""LOG_FORMAT=ecs: Elastic Common Schema lines, one object a line, rendered from a Line.

Our fields carry their ECS names (`observability.lines.ecs.FIELDS`): `http.request.id`,
`trace.id`, `span.id`, `transaction.id`, `user.id`, `client.ip`, `url.path` ... and, on a
request's terminal line, `http.response.status_code`, `http.response.body.bytes`,
`event.duration` (nanoseconds), `event.outcome`, `event.category` and `event.type`. Other
fields and the details go under `labels` as text. The layout is the one Elastic's
`ecs-logging` library writes (its four first keys at the top, the rest nested), so
Filebeat and Elastic Agent read it as theirs. Output is ASCII JSON (every other
character escaped), so one record stays one line whatever a client sent; values are
capped as in the other formats.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from observability.formatters import bound_fields, detail_fields
from observability.lines import ecs, messages
from observability.lines.line import Line
from observability.lines.textline import render_key
from observability.masking.escaping import MESSAGE_LIMIT, VALUE_LIMIT, cap
from observability.tracing import otel
from observability.tracing.context import CONTEXT_FIELDS

ECS_VERSION = "1.6.0"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return cap(value, VALUE_LIMIT)
    if isinstance(value, dict | list | tuple):
        return cap(json.dumps(value, default=str, ensure_ascii=False), VALUE_LIMIT)
    return cap(str(value), VALUE_LIMIT)


def _timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """`{"log.logger": x}` -> `{"log": {"logger": x}}` (a dotted name's parts as objects)."""
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        parts = name.split(".")
        target = nested
        for part in parts[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        target[parts[-1]] = value
    return nested


class EcsFormatter(logging.Formatter):
    """ECS lines from Lines (observability.lines.line): our fields under their ECS names."""

    takes_lines = True

    def __init__(self, *args: Any, ensure_ascii: bool = True, **kwargs: Any) -> None:
        super().__init__()
        self.ensure_ascii = ensure_ascii
        self._dumps: Callable[[Any], str] = json.JSONEncoder(
            ensure_ascii=ensure_ascii, separators=(",", ":"), default=str
        ).encode

    def format(self, record: logging.LogRecord) -> str:
        return self.render(Line.of_record(record))

    def render(self, line: Line) -> str:
        flat = self.fields(line)
        head = {
            "@timestamp": _timestamp(line.time),
            "log.level": logging.getLevelName(line.level).lower(),
            "message": cap(line.message, MESSAGE_LIMIT),
            "ecs.version": ECS_VERSION,
        }
        return self._dumps({**head, **_nest(flat)})

    def fields(self, line: Line) -> dict[str, Any]:
        """Every field of the line but the four first, by its dotted ECS name."""
        view: dict[str, Any] = {"log.logger": line.logger}
        site = line.site
        if site is not None:
            view["log.origin.file.name"] = site.module + ".py"
            view["log.origin.file.line"] = site.lineno
            view["log.origin.function"] = site.funcName
        if line.process is not None:
            view["process.pid"] = line.process
        if line.thread is not None:
            view["process.thread.name"] = line.thread
        context = line.context
        for key in CONTEXT_FIELDS:
            value = context.get(key)
            if value not in (None, ""):
                view[ecs.FIELDS[key]] = _text(value)
        if "span.id" in view:
            view["transaction.id"] = view["span.id"]
        service = otel.service_name() if otel.INSTALLED else ""
        if service:
            view["service.name"] = service
        view["event.id"] = line.record_id
        others = [*line.fields.items(), *bound_fields(line), *detail_fields(line, line.fields)]
        for key, value in others:
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
                view[f"{ecs.LABELS}.{render_key(key).replace('.', '_')}"] = _text(value)
        if line.exc_text:
            view["error.stack_trace"] = line.exc_text
        fields = line.fields
        if "status" in fields and line.message.startswith(messages.TERMINAL):
            failed = line.level >= logging.ERROR
            view["event.outcome"] = "failure" if failed else "success"
            view["event.category"] = ["web"]
            view["event.type"] = ["access", "error"] if failed else ["access"]
        return view
