"""RequestLoggingMiddleware: a correlation ID, context and lifecycle lines for every request.

Put it first in MIDDLEWARE. It is sync and async capable: under ASGI it runs natively
async (no thread hop of its own). The context is set at the start of each call and
reset in `finally` of the same call.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from observability.conf import obs_settings
from observability.context import current, reset_context, set_context
from observability.lifecycle import RequestState, enter, leave, log_finished
from observability.request import response_size

_EXC_ATTR = "_observability_exc_info"


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
        state, logger, tokens = enter(request, "middleware")
        try:
            try:
                response = self.get_response(request)
            except BaseException:
                log_finished(logger, request, state, 500, None, sys.exc_info())
                raise
            return self._finish(logger, request, state, response)
        finally:
            leave(tokens)

    async def __acall__(self, request: Any) -> Any:
        if not obs_settings.ENABLED:
            return await self.get_response(request)
        state, logger, tokens = enter(request, "middleware")
        try:
            try:
                response = await self.get_response(request)
            except BaseException:
                log_finished(logger, request, state, 500, None, sys.exc_info())
                raise
            return self._finish(logger, request, state, response)
        finally:
            leave(tokens)

    def process_exception(self, request: Any, exception: BaseException) -> None:
        """Keep the view's exception for the failed line; Django then makes its 500."""
        setattr(request, _EXC_ATTR, (type(exception), exception, exception.__traceback__))

    def _finish(
        self, logger: logging.Logger, request: Any, state: RequestState, response: Any
    ) -> Any:
        header = obs_settings.RESPONSE_HEADER
        if header:
            response[header] = state.fields["request_id"]
        state.exc_info = getattr(request, _EXC_ATTR, None)
        if getattr(response, "streaming", False):
            self._wrap_stream(logger, request, state, response)
        else:
            log_finished(logger, request, state, response.status_code, response_size(response))
        return response

    def _wrap_stream(
        self, logger: logging.Logger, request: Any, state: RequestState, response: Any
    ) -> None:
        """Log the terminal line when the stream ends, with the context bound while streaming."""
        snapshot = dict(current())
        status = response.status_code
        content = response.streaming_content

        def finish(size: int, exc_info: Any) -> None:
            with bound(snapshot):
                log_finished(logger, request, state, 500 if exc_info else status, size, exc_info)

        if getattr(response, "is_async", False):

            async def astream() -> AsyncIterator[bytes]:
                size, iterator = 0, content.__aiter__()
                while True:
                    with bound(snapshot):
                        try:
                            chunk = await iterator.__anext__()
                        except StopAsyncIteration:
                            break
                        except BaseException:
                            finish(size, sys.exc_info())
                            raise
                    size += len(chunk)
                    yield chunk
                finish(size, None)

            response.streaming_content = astream()
        else:

            def stream() -> Iterator[bytes]:
                size, iterator = 0, iter(content)
                while True:
                    with bound(snapshot):
                        try:
                            chunk = next(iterator)
                        except StopIteration:
                            break
                        except BaseException:
                            finish(size, sys.exc_info())
                            raise
                    size += len(chunk)
                    yield chunk
                finish(size, None)

            response.streaming_content = stream()


@contextmanager
def bound(snapshot: dict[str, Any]) -> Iterator[None]:
    """Run a block with the request's context bound (streaming runs after the middleware)."""
    token = set_context(snapshot)
    try:
        yield
    finally:
        reset_context(token)
