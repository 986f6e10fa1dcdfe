"""Elastic Common Schema names for our fields: the ECS formatter writes them, logtrace reads them.

A record's own field (left) is written as the ECS field (right); anything else a record
carries (event details, bound fields) goes under `labels.<name>` as text, which is where
ECS keeps custom keyword values.
"""

from __future__ import annotations

#: our field -> ECS field (dotted). Values of user.id and the labels are text (keyword).
FIELDS: dict[str, str] = {
    "request_id": "http.request.id",
    "trace_id": "trace.id",
    "span_id": "span.id",
    "user_id": "user.id",
    "username": "user.name",
    "ip": "client.ip",
    "method": "http.request.method",
    "path": "url.path",
    "query": "url.query",
    "user_agent": "user_agent.original",
    "status": "http.response.status_code",
    "response_size": "http.response.body.bytes",
    "event_type": "event.action",
    "route": "labels.route",
    "view": "labels.view",
}
#: ECS fields that are numbers; everything else is written as text.
INTEGER_FIELDS = frozenset({"http.response.status_code", "http.response.body.bytes"})
#: The terminal line's duration in seconds becomes event.duration in nanoseconds.
DURATION_FIELD = "event.duration"
NANOSECONDS = 1_000_000_000
LABELS = "labels"
#: ECS field -> our field, for reading ECS lines back.
OURS: dict[str, str] = {ecs: ours for ours, ecs in FIELDS.items()}
