"""Every use of another library's private attributes, in one place, each with a test
(tests/observability/test_compat.py) that fails loudly the day the shortcut stops working.

- DRF's `Request` wraps Django's `HttpRequest` as `_request`, and keeps the authenticated
  user as `_user` once authentication ran;
- Django's lazy `request.user` (`SimpleLazyObject`) keeps the user as `_wrapped` once
  something evaluated it (`empty` before);
- Django's `HttpResponse.headers` (`ResponseHeaders`) stores `lower name -> (name, value)`
  in `_store`;
- concurrent-log-handler's `emit()` calls `handleError()` inside its `except` block
  (`observability.output.rotation` re-raises there, so the writer counts the failure);
- OpenTelemetry's `opentelemetry.trace` keeps the global tracer provider, once set, as
  `_TRACER_PROVIDER` (None before);
- Sentry's `sentry_sdk.scope` keeps the current and isolation scopes in the ContextVars
  `_current_scope` and `_isolation_scope` (None until made), the global one as
  `_global_scope`: `Scope.get_client()` asks them in that order; a scope without a client
  of its own holds a `NonRecordingClient`, never active.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import empty


def django_request(request: Any) -> HttpRequest:
    """Django's request, whether `request` is one or DRF's `Request` around one."""
    return getattr(request, "_request", request)  # type: ignore[no-any-return]


def resolved_user(request: Any) -> Any:
    """The request's user if something already resolved it; None rather than resolving it
    (no session lookup, no query, no authentication from here)."""
    user = getattr(request, "_user", None)  # DRF's Request after authentication
    if user is None:
        user = getattr(request, "__dict__", {}).get("user")
        if user is not None and "_wrapped" in vars(user):  # a lazy user nobody evaluated yet
            wrapped = vars(user)["_wrapped"]
            user = None if wrapped is empty else wrapped
    return user


def set_header(response: Any, name: str, value: str) -> None:
    """`response[name] = value`, for a header name checked by the settings and a value we
    made or checked (a request ID, a traceparent: a few ASCII letters, digits and -._:).

    Django's `__setitem__` encodes and checks both for every header set (a third of what
    sending the two headers costs a request); with those checks already made, the pair
    is stored as Django stores it. Any other response object is set the usual way.
    """
    store = getattr(getattr(response, "headers", None), "_store", None)
    if type(store) is dict:
        lowered = _lowered.get(name)
        if lowered is None:
            lowered = _lowered[name] = name.lower()
        store[lowered] = (name, value)
    else:
        response[name] = value


_lowered: dict[str, str] = {}


def set_tracer_provider_of(trace_module: Any) -> Any:
    """OpenTelemetry's global tracer provider once one is set, else None.

    `get_tracer_provider()` answers a stand-in (ProxyTracerProvider) until then, but looks
    in os.environ on every call to learn whether one is named there (several thousand
    instructions, once per request that logs a record).
    """
    return getattr(trace_module, "_TRACER_PROVIDER", None)


def sentry_client_active(scope_module: Any, non_recording: type) -> bool:
    """`sentry_sdk.is_initialized()`, without its cost when Sentry is not initialized.

    `Scope.get_client()` looks for an active client in the current, the isolation and the
    global scope, and when none has one makes a new NonRecordingClient to answer with;
    `is_initialized()` asks that client. This asks the same scopes in the same order, and
    skips (without calling its `is_active()`) the NonRecordingClient a scope holds when it
    has no client of its own: without Sentry, no call into sentry_sdk at all.
    """
    scopes = (
        scope_module._current_scope.get(),
        scope_module._isolation_scope.get(),
        scope_module._global_scope,
    )
    for scope in scopes:
        client = getattr(scope, "client", None)
        if client is not None and type(client) is not non_recording and client.is_active():
            return True
    return False
