"""Was this incoming request ID seen before, by any worker on any host? Django's cache knows.

A client may send the request ID of another user's request: the two would then tell one
story in `logtrace` and the viewer, whatever sampling kept of the first. Each use after the
first is flagged (a `request_id_reused` event naming the first use's span), so the memory of
the IDs seen must be shared by every process: OBSERVABILITY['SEEN_IDS_CACHE'] names the cache.

- Only requests that carry an incoming ID are looked up: server-made IDs come from the
  CSPRNG and never repeat, and cost nothing here.
- One atomic `cache.add()` per such request (atomic on the database cache, Redis and
  memcached): the first use stores its span ID and wins; a later use, in any process, gets
  the first one's span back. The database cache also answers False when its own write
  fails, so a False is believed only when the entry is there to read.
- The cache key is a keyed hash of the ID (observability.tracing.keyed), never the client's text.
- Bounded: an entry lives SEEN_IDS_WINDOW seconds, and the cache's own bound (MAX_ENTRIES of
  the database cache, Redis' maxmemory) caps the whole below that. One client adds at most
  SEEN_IDS_PER_CLIENT IDs a window (observability.http.id_quota): past it, its IDs are looked up
  but not remembered, so it cannot push other clients' IDs out of the cache.
- Never costs a request: a cache error loses the check, reported on stderr at most once a
  minute per cache and kind of error. On the database cache the check never joins a
  transaction the request has open (a rollback would undo it, an error could break it):
  in autocommit it is its own transaction; inside a test case's transaction, a savepoint;
  inside a real atomic block (@log_api_request alone in an atomic view), or on an event
  loop (ASGI, where the database may not be called and a slow cache would stall every
  request), it runs on a helper thread with its own connection, which writes the event.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import os
import re
import threading
import time
from collections.abc import Callable

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.db import close_old_connections, transaction

from observability.conf import obs_settings
from observability.http.id_quota import id_quota
from observability.output.writer import every_tick, report
from observability.shared.slots import NotStoredError, placement_of
from observability.tracing.context import EMPTY
from observability.tracing.keyed import keyed_digest

KEY_PREFIX = "observability:seen-id:"
#: Checks waiting for the helper thread; past it a check is lost (and counted), so a cache
#: that hangs cannot make the queue grow without bound.
MAX_PENDING = 1000
REPORT_INTERVAL = 60.0
DRAIN_TIMEOUT = 2.0
#: The helper thread tries a check this many times when the cache refused the write (a
#: database lock held by a request's transaction), waiting 0.05, 0.1, 0.2 ... s between.
HELPER_TRIES = 5
_SPAN_ID = re.compile(r"[0-9a-f]{16}")

#: Called with the first use's span ID when a request reuses an ID, or with None when the
#: client is past its quota (SEEN_IDS_PER_CLIENT) and the ID was not remembered.
OnReuse = Callable[[str | None], None]
_Check = tuple[contextvars.Context, str, str, str, OnReuse, str | None]


def cache_key(request_id: str) -> str:
    """The cache key of an incoming ID: a keyed BLAKE2b, 128 bits, in hex."""
    return KEY_PREFIX + keyed_digest("seen-ids", request_id, 16).hex()


def first_use(
    cache: BaseCache, request_id: str, span_id: str, client: str | None = None
) -> str | None:
    """Remember this use; the first use's span ID if the ID was seen in the window, else None.

    Given the client, within its quota only: past it, OverQuota (with the first use's span
    ID, if the ID was seen) and nothing remembered.
    """
    key = cache_key(request_id)
    settings = obs_settings
    if client is not None and settings.SEEN_IDS_PER_CLIENT is not None:
        quota_cache = caches[settings.SEEN_IDS_QUOTA_CACHE or settings.SEEN_IDS_CACHE]
        if not id_quota.take(quota_cache, client):
            first = cache.get(key)
            raise OverQuotaError(None if first is None else _span_or_empty(first, span_id))
    if cache.add(key, span_id, settings.SEEN_IDS_WINDOW):
        return None
    first = cache.get(key)
    if first is None:
        raise NotStoredError
    return _span_or_empty(first, span_id)


class OverQuotaError(Exception):
    """The client is past SEEN_IDS_PER_CLIENT: the ID was looked up, not remembered."""

    def __init__(self, first: str | None) -> None:
        super().__init__()
        self.first = first


def _span_or_empty(first: object, span_id: str) -> str | None:
    if first == span_id:  # ours: a client library re-sent an add() that had been applied
        return None
    return first if isinstance(first, str) and _SPAN_ID.fullmatch(first) else EMPTY


def _answer(on_reuse: OnReuse, first: str | None, over: OverQuotaError | None) -> None:
    if over is not None:
        on_reuse(None)  # the client past its quota: said first
        first = over.first
    if first is not None:
        on_reuse(first)


class SeenIds:
    """The check, run in the request's thread or handed to this process's helper thread."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._pending: collections.deque[_Check | threading.Event] = collections.deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.lost = 0  # checks an error or a full queue cost
        self._reported: dict[tuple[str, str], float] = {}

    def check(
        self, request_id: str, span_id: str, on_reuse: OnReuse, client: str | None = None
    ) -> None:
        """Flag (`on_reuse(first span)`) a request whose incoming ID was used before; given
        the client, hold it to its quota (`on_reuse(None)` past it)."""
        alias = obs_settings.SEEN_IDS_CACHE
        if alias is None:
            return
        over = None
        try:
            cache = caches[alias]
            placement, using = placement_of(cache)
            if placement == "helper":
                # The copied context carries the request's fields to the event.
                check = (contextvars.copy_context(), alias, request_id, span_id, on_reuse, client)
                self._submit(check)
                return
            try:
                if placement == "savepoint":
                    with transaction.atomic(using=using):
                        first = first_use(cache, request_id, span_id, client)
                else:
                    first = first_use(cache, request_id, span_id, client)
            except OverQuotaError as exc:
                first, over = None, exc
        except NotStoredError:
            self._lose(alias, "entry not stored")
            return
        except Exception as exc:  # a cache error costs the check, never the request
            self._lose(alias, type(exc).__name__)
            return
        _answer(on_reuse, first, over)

    def _lose(self, alias: str, cause: str) -> None:
        self.lost += 1
        now = time.monotonic()
        if now - self._reported.get((alias, cause), -REPORT_INTERVAL) >= REPORT_INTERVAL:
            if len(self._reported) < 64:  # one entry per cache and kind of error: a few
                self._reported[(alias, cause)] = now
            report(
                f"request ID reuse check skipped: cache {alias!r} failed ({cause}); "
                f"requests go on unchecked ({self.lost} checks lost so far)"
            )

    # --- the helper thread ---
    def _submit(self, item: _Check | threading.Event) -> None:
        if isinstance(item, tuple) and len(self._pending) >= MAX_PENDING:
            self._lose(item[1], "helper thread behind")
            return
        self._pending.append(item)
        thread = self._thread
        if thread is None or not thread.is_alive():
            with self._start_lock:
                if self._thread is thread:
                    thread = threading.Thread(target=self._run, name="observability-seen-ids")
                    thread.daemon = True
                    thread.start()
                    self._thread = thread
        self._wake.set()

    def _run(self) -> None:
        pending = self._pending
        while True:
            self._wake.wait()
            self._wake.clear()
            checked = False
            while pending:
                item = pending.popleft()
                if isinstance(item, threading.Event):
                    item.set()
                    continue
                context, alias, request_id, span_id, on_reuse, client = item
                context.run(self._check_here, alias, request_id, span_id, on_reuse, client)
                checked = True
            if checked:
                # Like the end of a request: a broken or too-old connection is closed.
                with contextlib.suppress(Exception):
                    close_old_connections()

    def _check_here(
        self, alias: str, request_id: str, span_id: str, on_reuse: OnReuse, client: str | None
    ) -> None:
        for attempt in range(HELPER_TRIES):
            over = None
            try:
                first = first_use(caches[alias], request_id, span_id, client)
            except OverQuotaError as exc:
                first, over = None, exc
            except NotStoredError:
                if attempt + 1 < HELPER_TRIES:  # off the request's path: it may wait
                    time.sleep(0.05 * 2**attempt)
                    continue
                self._lose(alias, "entry not stored")
                return
            except Exception as exc:  # as in check()
                self._lose(alias, type(exc).__name__)
                return
            with contextlib.suppress(Exception):  # the thread outlives a bad handler
                _answer(on_reuse, first, over)
            return

    def wait(self, timeout: float = DRAIN_TIMEOUT) -> bool:
        """Wait until the checks handed to the helper so far are done; False on timeout."""
        if self._thread is None or self._thread is threading.current_thread():
            return not self._pending
        done = threading.Event()
        self._submit(done)
        return done.wait(timeout)

    def drain(self, final: bool) -> None:
        """The log writer's last tick: the pending checks write their events first."""
        if final and self._thread is not None:
            self.wait()

    def after_fork_in_child(self) -> None:
        # The parent's pending checks are the parent's; the child starts its own thread.
        self._reset()


seen_ids = SeenIds()
every_tick(seen_ids.drain)
os.register_at_fork(after_in_child=seen_ids.after_fork_in_child)
