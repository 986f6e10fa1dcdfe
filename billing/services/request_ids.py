"""The request a row was written by: its X-Request-ID, stored on the rows it writes."""

from __future__ import annotations

from observability import get_request_id


def current_request_id() -> str:
    """The current request's ID, stored on the rows it writes ("" outside a request)."""
    return get_request_id(default="") or ""
