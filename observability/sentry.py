"""Sentry, when the project uses it: every event carries the request ID and trace ID as tags.

    pip install 'billing-api[sentry]'      # sentry-sdk; then sentry_sdk.init(...) as usual

Nothing to configure here: when `sentry_sdk` is installed and initialised, each request
(and each `request_context()`: a command, a task) runs in an isolation scope of its own,
forked from the one around it, with the tags `request_id` and `trace_id`, and, when
OBSERVABILITY['VIEWER_URL'] names the trace viewer, a `request` link back to the request's
page in the `observability` context. Two requests served one after the other on the same
thread, or side by side on one event loop, never share their tags. Without Sentry this
costs one check of a module attribute.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from observability.compat import sentry_client_active
from observability.conf import obs_settings

_INSTALLED = importlib.util.find_spec("sentry_sdk") is not None
_sdk: Any = None  # the sentry_sdk module, imported on the first request
_scopes: Any = None  # sentry_sdk.scope
_non_recording: type = type(None)  # sentry_sdk.client.NonRecordingClient


def request_scope(fields: Mapping[str, Any]) -> AbstractContextManager[Any] | None:
    """Entered: the request's own isolation scope, tagged; None without an active Sentry."""
    global _sdk, _scopes, _non_recording
    if not _INSTALLED:
        return None
    sentry_sdk = _sdk
    if sentry_sdk is None:
        import sentry_sdk
        import sentry_sdk.client as sentry_client
        import sentry_sdk.scope as sentry_scopes

        _scopes, _non_recording = sentry_scopes, sentry_client.NonRecordingClient
        _sdk = sentry_sdk
    if not sentry_client_active(_scopes, _non_recording):
        return None
    forked: AbstractContextManager[Any] = sentry_sdk.isolation_scope()
    scope = forked.__enter__()
    request_id, trace_id = fields.get("request_id"), fields.get("trace_id")
    if request_id is not None:
        scope.set_tag("request_id", str(request_id))
    if trace_id is not None:
        scope.set_tag("trace_id", str(trace_id))
    viewer = obs_settings.VIEWER_URL
    if viewer and request_id is not None:
        link = f"{viewer.rstrip('/')}/{request_id}/"
        scope.set_context("observability", {"request": link})
    return forked
