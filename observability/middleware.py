"""RequestLoggingMiddleware: a correlation ID, context and lifecycle lines for every request.

Put it first in MIDDLEWARE. It is sync and async capable: under ASGI it runs natively
async (no thread hop of its own). Both paths wrap the view in one RequestLifecycle, which
sets the context at the start of the call and resets it in `finally` of the same call.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from observability.conf import obs_settings
from observability.http.lifecycle import EXC_ATTR, RequestLifecycle


class RequestLoggingMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        if not obs_settings.ENABLED:
            return self.get_response(request)
        with RequestLifecycle(request, "middleware") as lifecycle:
            return lifecycle.respond(self.get_response(request))

    async def __acall__(self, request: Any) -> Any:
        if not obs_settings.ENABLED:
            return await self.get_response(request)
        with RequestLifecycle(request, "middleware") as lifecycle:
            return lifecycle.respond(await self.get_response(request))

    def process_exception(self, request: Any, exception: BaseException) -> None:
        """Keep the view's exception for the failed line; Django then makes its 500."""
        setattr(request, EXC_ATTR, (type(exception), exception, exception.__traceback__))
