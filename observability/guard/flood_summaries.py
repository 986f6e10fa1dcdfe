"""Flood control's summary lines: one for each window whose records were counted, not written.

A summary says how many records it stands for, `repeated=<N> first=<time> last=<time>`,
on the logger and at the level of its key, so it reaches the same files as those records.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from observability.guard.flood_keys import Key
from observability.guard.flood_windows import COPIED, OTHER_CLIENTS, Window
from observability.monitoring.metrics import count_flood_summary
from observability.tracing.context import EMPTY

#: Set on a summary record so the guard lets it through.
SUMMARY_ATTR = "_obs_flood_summary"


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def summarise(key: Key, window: Window, length: float) -> None:
    """Write the summary of a closed window of `length` seconds."""
    name, level, _, client = key
    example = window.example
    count = window.suppressed
    count_flood_summary(count)
    if "event_type" in example:
        message = (
            f"Security Event: {example['event_type']} - Severity: "
            f"{example.get('severity', '-')}, Repeated: {count} more from {client}"
        )
    else:
        message = f"Repeated: {count} more records like: {example['message']}"
    fields = {
        **{key: example[key] for key in COPIED if key in example},
        "repeated": count,
        "first": _iso(window.first),
        "last": _iso(window.last),
        "window": length,
        SUMMARY_ATTR: True,
    }
    if "event_type" not in example:  # an event's call site is the event helper's
        fields["call_site"] = example["call_site"]
    if "/" in client or client == OTHER_CLIENTS:
        fields["client"] = client  # no address of its own (client.ip in ECS is one)
    elif client != EMPTY:
        fields["ip"] = client
    logger = logging.getLogger(name)
    record = logger.makeRecord(name, level, __file__, 0, message, (), None, "sweep", fields)
    logger.handle(record)
