"""What a LogRecord carries by itself, and what it carries for us."""

from __future__ import annotations

import logging
from typing import Any

from observability.context import CONTEXT_FIELDS
from observability.otel import RECORD_ATTRS

#: Attributes every LogRecord has; anything else on a record came from `extra` or a filter.
STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
#: Never rendered as fields: our bookkeeping, and Django's request objects on its records.
HIDDEN_ATTRS = frozenset(
    {"_obs_redacted", "_obs_flood", "_obs_flood_summary", "request", "server_time", *RECORD_ATTRS}
)
NOT_EXTRA = STANDARD_ATTRS | HIDDEN_ATTRS | frozenset(CONTEXT_FIELDS)


def extra_keys(record: logging.LogRecord) -> list[str]:
    """The record's extra fields (event fields, bound context), in the order they were set."""
    return [key for key in record.__dict__ if key not in NOT_EXTRA]


def safe_extra(fields: dict[str, Any] | None) -> dict[str, Any]:
    """Rename keys that would collide with LogRecord's own (logging raises KeyError on them)."""
    if not fields:
        return {}
    return {(f"field_{key}" if key in STANDARD_ATTRS else str(key)): v for key, v in fields.items()}
