"""@log_api_request: opt-in detail for one view; the whole lifecycle when the middleware is off.

    @api_view(["POST"])
    @log_api_request
    def process_payment(request): ...

With RequestLoggingMiddleware active it adds one DEBUG line (view, arguments, request
size) and never a second started/completed pair. Without it (ENABLED False, or not
installed) it logs the seed's lifecycle itself: started, completed or failed, slow.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from observability.context import lifecycle_owner
from observability.lifecycle import enter, leave, log_finished
from observability.request import response_size

logger = logging.getLogger("billing.views")


def _find_request(args: tuple[Any, ...]) -> Any:
    for arg in args[:2]:  # view(request, ...) or method(self, request, ...)
        if hasattr(arg, "META") or hasattr(arg, "_request"):
            return arg
    return None


def _log_detail(view: Any, request: Any, kwargs: dict[str, Any]) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        meta = getattr(request, "META", {})
        logger.debug(
            "API view %s called",
            view.__qualname__,
            extra={
                "view": f"{view.__module__}.{view.__qualname__}",
                "view_kwargs": kwargs,
                "request_size": int(meta.get("CONTENT_LENGTH") or 0),
            },
        )


def log_api_request(view: Any) -> Any:
    """Log a view's detail, or its whole lifecycle when no middleware owns the request."""

    if iscoroutinefunction(view):

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            request = _find_request(args)
            if request is None or lifecycle_owner.get() is not None:
                _log_detail(view, request, kwargs)
                return await view(*args, **kwargs)
            state, api, tokens = enter(request, "decorator")
            try:
                _log_detail(view, request, kwargs)
                try:
                    response = await view(*args, **kwargs)
                except BaseException:
                    log_finished(api, request, state, 500, None, sys.exc_info())
                    raise
                log_finished(api, request, state, response.status_code, response_size(response))
                return response
            finally:
                leave(tokens)

        wrapper = functools.wraps(view)(async_wrapper)
        return markcoroutinefunction(wrapper)

    @functools.wraps(view)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        request = _find_request(args)
        if request is None or lifecycle_owner.get() is not None:
            _log_detail(view, request, kwargs)
            return view(*args, **kwargs)
        state, api, tokens = enter(request, "decorator")
        try:
            _log_detail(view, request, kwargs)
            try:
                response = view(*args, **kwargs)
            except BaseException:
                log_finished(api, request, state, 500, None, sys.exc_info())
                raise
            log_finished(api, request, state, response.status_code, response_size(response))
            return response
        finally:
            leave(tokens)

    return sync_wrapper
