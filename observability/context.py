"""The request context: who, where and which request, held in contextvars.

One ContextVar holds an immutable snapshot (a dict never mutated after it is set);
`bind()` sets a new snapshot. Mutating a dict that lives inside a ContextVar would leak
changes into every context that copied it (threads, asyncio tasks), see
https://docs.python.org/3/library/contextvars.html#contextvars.copy_context.
"""

from __future__ import annotations

import contextvars
import functools
import os
import random
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: The fields every record carries; "-" when unknown (outside a request, anonymous).
CONTEXT_FIELDS = ("request_id", "user_id", "username", "ip", "method", "path")
EMPTY = "-"
#: The request attribute where the middleware leaves the request's final context.
CONTEXT_ATTR = "_observability_context"
_EMPTY_CONTEXT: Mapping[str, Any] = dict.fromkeys(CONTEXT_FIELDS, EMPTY)

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "observability_context", default=_EMPTY_CONTEXT
)


#: Who logs the current request's started/completed lines: "middleware", "decorator" or None.
lifecycle_owner: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "observability_lifecycle_owner", default=None
)


def get_context() -> dict[str, Any]:
    """Return a copy of the current context (every CONTEXT_FIELDS key, plus bound fields)."""
    return dict(_context.get())


def current() -> Mapping[str, Any]:
    """Return the current snapshot itself, read-only (no copy, for the hot path)."""
    return _context.get()


def get_request_id() -> str:
    """Return the current request ID, or "-" outside a request."""
    return _context.get()["request_id"]


_random = random.Random()  # seeded from os.urandom; re-seeded in every forked child
os.register_at_fork(after_in_child=_random.seed)


def new_request_id() -> str:
    """A dashed UUID4 from a per-process generator (os.urandom per request costs ~30 µs here)."""
    return str(uuid.UUID(int=_random.getrandbits(128), version=4))


def set_context(fields: Mapping[str, Any]) -> contextvars.Token:
    """Replace the context with CONTEXT_FIELDS defaults plus `fields`; reset with the token."""
    return _context.set({**_EMPTY_CONTEXT, **fields})


def reset_context(token: contextvars.Token) -> None:
    _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields (e.g. payment_id=42) to the context for the rest of the current request.

    Values go through the redaction policy here, once: every later record copies them.
    """
    from observability.conf import obs_settings
    from observability.filters import get_redactor

    if obs_settings.REDACT:
        redactor = get_redactor()
        fields = {key: redactor.field(key, value) for key, value in fields.items()}
    _context.set({**_context.get(), **fields})


def bind_user(user: Any) -> None:
    """Bind an authenticated user's id and name; reads attributes only, never queries."""
    user_id = getattr(user, "pk", None)
    if user_id is None:
        return
    username = user.get_username() if hasattr(user, "get_username") else str(user_id)
    bind(user_id=user_id, username=username)


@contextmanager
def request_context(request_id: str | None = None, **fields: Any) -> Iterator[dict[str, Any]]:
    """Give work outside HTTP (a command, a job) its own request ID and context.

    >>> with request_context(job="nightly-invoices"):
    ...     logger.info("started")   # carries request_id=<new uuid> job=nightly-invoices
    """
    token = set_context({"request_id": request_id or new_request_id(), **fields})
    try:
        yield get_context()
    finally:
        _context.reset(token)


def carry_context(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap `func` to run in a copy of the caller's current context.

    Threads start with an empty context and pool threads keep whatever the last task
    left, so pass `carry_context(fn)` to `Thread(target=...)` or `executor.submit(...)`.
    """
    snapshot = contextvars.copy_context()

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return snapshot.copy().run(func, *args, **kwargs)

    return run
