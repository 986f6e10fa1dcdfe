"""The metrics' label values, bounded whatever a client sends.

`http_request_method` is a method of RFC 9110 or PATCH, else `_OTHER`; `http_route` is
the URL pattern that matched, or `_static` (a static file WhiteNoise answered) or
`_unmatched`; a security event's type and severity are names of a known shape, at most
EVENT_TYPES_LIMIT types a process, else `_OTHER`; a file is the tag LOG_FILES gives it.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

from django.core.signals import setting_changed

from observability.tracing.context import EMPTY

#: http.request.method's known values (RFC 9110 and PATCH); anything else is OTHER.
METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
OTHER = "_OTHER"
STATIC_ROUTE = "_static"
UNMATCHED_ROUTE = "_unmatched"
#: The dropped records' `file` when the shared queue was full (it is every file's).
QUEUE_FILE = "_queue"
SEVERITIES = frozenset({"debug", "info", "low", "warning", "medium", "error", "high", "critical"})
EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
EVENT_TYPES_LIMIT = 100  # distinct event types a process labels; past it, OTHER


def file_label(target: Any) -> str:
    """The file a handler writes, as tagged in LOG_FILES ("requests_file" -> "requests")."""
    name = getattr(target, "name", None)
    if name:
        return str(name).removesuffix("_file")
    filename = getattr(target, "baseFilename", None)
    return os.path.basename(filename) if filename else type(target).__name__


def route_label(route: str, status: int, path: str) -> str:
    """The http_route of a request: its pattern, or `_static` / `_unmatched` without one."""
    if route != EMPTY:
        return route
    if status != 404 and path:
        prefix = _static_prefix()
        if prefix and path.startswith(prefix):
            return STATIC_ROUTE  # WhiteNoise answered before the router ran
    return UNMATCHED_ROUTE


_static: list[str] = []  # the path prefix of STATIC_URL, once known


def _static_prefix() -> str:
    """STATIC_URL's path ("/static/"), "" when it has none; remembered until it changes."""
    if not _static:
        from django.conf import settings

        path = urlsplit(str(getattr(settings, "STATIC_URL", None) or "")).path
        _static.append("/" + path.lstrip("/") if path.strip("/") else "")
    return _static[0]


def _forget_static_prefix(*, setting: str, **kwargs: Any) -> None:
    if setting in ("STATIC_URL", "FORCE_SCRIPT_NAME"):
        _static.clear()


setting_changed.connect(_forget_static_prefix)
