"""What a LogRecord carries by itself, and what it carries for us."""

from __future__ import annotations

import logging
from typing import Any

from observability.tracing.context import CONTEXT_FIELDS
from observability.tracing.otel import RECORD_ATTRS

#: Attributes every LogRecord has; anything else on a record came from `extra` or a filter.
STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
#: The context snapshot the context filter read for a record (absent values None).
CONTEXT_SNAPSHOT_ATTR = "_obs_context"
#: The context fields a record's `extra` gave itself (they win over the context's).
GIVEN_ATTR = "_obs_given"
#: A record's identity (observability.lines.line), the same in every file it is written to.
RECORD_ID_ATTR = "_obs_record_id"
#: An event's or a metric's details: a namespace of their own (`extra={"details": {...}}`).
DETAILS_ATTR = "details"
#: Never rendered as fields: our bookkeeping, and Django's request objects on its records.
HIDDEN_ATTRS = frozenset(
    {
        "_obs_redacted",
        "_obs_flood",
        "_obs_flood_summary",
        CONTEXT_SNAPSHOT_ATTR,
        GIVEN_ATTR,
        RECORD_ID_ATTR,
        "request",
        "server_time",
        *RECORD_ATTRS,
    }
)
NOT_EXTRA = STANDARD_ATTRS | HIDDEN_ATTRS | frozenset(CONTEXT_FIELDS)


def extra_keys(record: logging.LogRecord) -> list[str]:
    """The record's extra fields (event fields, bound context), in the order they were set.

    `details` is not one when it is a mapping: it is the details' own namespace.
    """
    attrs = record.__dict__
    if NOT_EXTRA.issuperset(attrs):  # the usual record, without extra: one C loop says so
        return []
    return [
        key
        for key in attrs
        if key not in NOT_EXTRA and not (key == DETAILS_ATTR and isinstance(attrs[key], dict))
    ]


def safe_extra(fields: dict[str, Any] | None) -> dict[str, Any]:
    """Rename keys that would collide with LogRecord's own (logging raises KeyError on them)."""
    if not fields:
        return {}
    return {(f"field_{key}" if key in STANDARD_ATTRS else str(key)): v for key, v in fields.items()}
