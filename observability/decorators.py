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
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from observability.http.lifecycle import RequestLifecycle
from observability.output.loggers import get_logger
from observability.tracing.context import request_scope

View = TypeVar("View", bound=Callable[..., Any])


def _find_request(args: tuple[Any, ...]) -> Any:
    for arg in args[:2]:  # view(request, ...) or method(self, request, ...)
        if hasattr(arg, "META") or hasattr(arg, "_request"):
            return arg
    return None


def _log_detail(view: Any, request: Any, kwargs: dict[str, Any]) -> None:
    logger = get_logger("VIEWS_LOGGER")
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


def _owns_lifecycle(request: Any) -> bool:
    """The decorator logs the lifecycle only when nothing else does for this request."""
    return request is not None and request_scope.get() is None


def log_api_request(view: View) -> View:
    """Log a view's detail, or its whole lifecycle when no middleware owns the request."""

    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            request = _find_request(args)
            if not _owns_lifecycle(request):
                _log_detail(view, request, kwargs)
                return await view(*args, **kwargs)
            with RequestLifecycle(request, "decorator") as lifecycle:
                _log_detail(view, request, kwargs)
                return lifecycle.respond(await view(*args, **kwargs), header=False)

        return markcoroutinefunction(async_wrapper)  # type: ignore[return-value]

    @functools.wraps(view)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        request = _find_request(args)
        if not _owns_lifecycle(request):
            _log_detail(view, request, kwargs)
            return view(*args, **kwargs)
        with RequestLifecycle(request, "decorator") as lifecycle:
            _log_detail(view, request, kwargs)
            return lifecycle.respond(view(*args, **kwargs), header=False)

    return sync_wrapper  # type: ignore[return-value]
