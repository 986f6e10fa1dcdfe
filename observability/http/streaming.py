"""Streaming responses: the terminal line is written when the stream ends, not when the
middleware returns.

Its body is produced after the middleware has returned (and reset the context), chunk by
chunk: each chunk is made with the request's context bound, and the stream's end (or
failure) calls back the lifecycle's `finish()` with the bytes counted.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Protocol

from observability.tracing.context import bound

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class Finish(Protocol):
    def __call__(self, status: int, size: int | None, exc_info: ExcInfo | None = None) -> None: ...


def stream_until_done(response: Any, context: Mapping[str, Any], finish: Finish) -> None:
    """Wrap a streaming response's content so that its end calls `finish` in `context`."""
    watch = _StreamWatch(finish, response.status_code, context)
    content = response.streaming_content
    if getattr(response, "is_async", False):
        response.streaming_content = _astream(content, watch)
    else:
        response.streaming_content = _stream(content, watch)


class _StreamWatch:
    """Counts a stream's bytes, binds the request's context while a chunk is made."""

    def __init__(self, finish: Finish, status: int, context: Mapping[str, Any]) -> None:
        self.finish = finish
        self.status = status
        self.snapshot = context
        self.size = 0

    @contextlib.contextmanager
    def fetching(self) -> Iterator[None]:
        with bound(self.snapshot):
            try:
                yield
            except BaseException as exc:
                self.end((type(exc), exc, exc.__traceback__))
                raise

    def count(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        return chunk

    def end(self, exc_info: ExcInfo | None = None) -> None:
        with bound(self.snapshot):
            self.finish(500 if exc_info else self.status, self.size, exc_info)


def _stream(content: Iterable[bytes], watch: _StreamWatch) -> Iterator[bytes]:
    iterator = iter(content)
    while True:
        with watch.fetching():
            chunk = next(iterator, None)
        if chunk is None:
            break
        yield watch.count(chunk)
    watch.end()


async def _astream(content: AsyncIterable[bytes], watch: _StreamWatch) -> AsyncIterator[bytes]:
    async for chunk in _fetch_each(content, watch):
        yield watch.count(chunk)
    watch.end()


async def _fetch_each(content: AsyncIterable[bytes], watch: _StreamWatch) -> AsyncIterator[bytes]:
    iterator = content.__aiter__()
    while True:
        with watch.fetching():
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
        yield chunk
