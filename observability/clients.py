"""Carry the request's trace into outgoing HTTP calls: `requests` and `httpx` integrations.

    from observability.clients import traced_session, traced_httpx_client

    session = traced_session()             # requests: every call gets the headers
    with traced_httpx_client() as client:  # httpx, sync (traced_async_httpx_client: async)
        client.get("https://ledger.internal/api/entries")

Each call made inside a request (or `request_context()`) carries `X-Request-ID`, a
`traceparent` with this trace's ID and a new child span ID, and `tracestate` when the
request brought one (`observability.outgoing_headers()`). A header the caller set itself
is left alone. Each call writes one record: method, host, masked path, status or error,
duration and the span ID it sent (observability.spans.calls). For work moved to a thread,
wrap it in `observability.carry_context`.
Neither library is a dependency of this app: each integration imports its own on use.
"""

from __future__ import annotations

import functools
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from observability.spans.calls import recorded
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
    """A `requests.Session` (new, or the one given) whose every call carries the headers
    and is recorded (observability.spans.calls)."""
    import requests
    from requests.adapters import HTTPAdapter

    class TracingAdapter(HTTPAdapter):
        def send(
            self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
        ) -> requests.Response:
            add_trace_headers(request.headers)
            method, url = request.method or "GET", request.url or ""
            with recorded(method, url, request.headers) as outcome:
                response = super().send(request, *args, **kwargs)
                outcome.status = response.status_code
            return response

    session = session or requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, TracingAdapter())
    return session


@functools.cache
def _client_classes() -> tuple[type[httpx.Client], type[httpx.AsyncClient]]:
    import httpx

    class TracedClient(httpx.Client):
        def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            add_trace_headers(request.headers)
            with recorded(request.method, str(request.url), request.headers) as outcome:
                response = super().send(request, **kwargs)
                outcome.status = response.status_code
            return response

    class TracedAsyncClient(httpx.AsyncClient):
        async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            add_trace_headers(request.headers)
            with recorded(request.method, str(request.url), request.headers) as outcome:
                response = await super().send(request, **kwargs)
                outcome.status = response.status_code
            return response

    return TracedClient, TracedAsyncClient


def traced_httpx_client(**kwargs: Any) -> httpx.Client:
    """An `httpx.Client` (same arguments) whose every request carries the headers and is
    recorded."""
    return _client_classes()[0](**kwargs)


def traced_async_httpx_client(**kwargs: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` (same arguments): `traced_httpx_client` for async code."""
    return _client_classes()[1](**kwargs)
