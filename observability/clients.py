"""Carry the request's trace into outgoing HTTP calls: `requests` and `httpx` integrations.

    from observability.clients import traced_session, traced_httpx_client

    session = traced_session()             # requests: every call gets the headers
    with traced_httpx_client() as client:  # httpx, sync (traced_async_httpx_client: async)
        client.get("https://ledger.internal/api/entries")

Each call made inside a request (or `request_context()`) carries `X-Request-ID`, a
`traceparent` with this trace's ID and a new child span ID, and `tracestate` when the
request brought one (`observability.outgoing_headers()`). A header the caller set itself
is left alone. For work moved to a thread, wrap it in `observability.carry_context`.
Neither library is a dependency of this app: each integration imports its own on use.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from observability.tracing.tracecontext import outgoing_headers

if TYPE_CHECKING:
    import httpx
    import requests


def add_trace_headers(headers: MutableMapping[str, str]) -> None:
    """Put the current request's trace headers into `headers`, keeping any already set."""
    for name, value in outgoing_headers().items():
        if name not in headers:
            headers[name] = value


def traced_session(session: requests.Session | None = None) -> requests.Session:
    """A `requests.Session` (new, or the one given) whose every call carries the headers."""
    import requests
    from requests.adapters import HTTPAdapter

    class TracingAdapter(HTTPAdapter):
        def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
            super().add_headers(request, **kwargs)
            add_trace_headers(request.headers)

    session = session or requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, TracingAdapter())
    return session


def _httpx_hooks(kwargs: dict[str, Any], hook: Any) -> dict[str, Any]:
    hooks = dict(kwargs.pop("event_hooks", None) or {})
    hooks["request"] = [*hooks.get("request", []), hook]
    return hooks


def _add_to_request(request: httpx.Request) -> None:
    add_trace_headers(request.headers)


async def _add_to_request_async(request: httpx.Request) -> None:
    add_trace_headers(request.headers)


def traced_httpx_client(**kwargs: Any) -> httpx.Client:
    """An `httpx.Client` (same arguments) whose every request carries the headers."""
    import httpx

    return httpx.Client(event_hooks=_httpx_hooks(kwargs, _add_to_request), **kwargs)


def traced_async_httpx_client(**kwargs: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` (same arguments) whose every request carries the headers."""
    import httpx

    return httpx.AsyncClient(event_hooks=_httpx_hooks(kwargs, _add_to_request_async), **kwargs)
