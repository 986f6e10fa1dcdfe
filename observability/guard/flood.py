"""Flood control: repeated records from one source are written up to a limit, then summarised.

Which records: every record of a guarded logger or of any of its descendants (created at
start-up or later), and every record that reaches the security file whatever its logger.
Guarded loggers: SECURITY_LOGGER, AUTH_LOGGER and `django.security` (security records),
and every name in FLOOD_LOGGERS; never the REQUEST_LOGGER (lifecycle lines are sampled,
never summarised).

Where: logging runs a logger's filters only for records made on that very logger, never for
records its children propagate (Django logs on `django.security.DisallowedHost`,
`django.security.csrf`...). So the guard sits in two places, and decides once per record:

- as a *logger* filter on each guarded logger and on each of its descendants (those that
  exist at start-up, those made later as soon as the writer's tick or one of their records
  shows them): the decision is taken before any handler runs, so every handler of that
  record, ours and the user's, gets the same records and the same summaries;
- as a *handler* filter (`observability.filters.FloodFilter`, first on every handler
  `build_logging()` makes; the security file's guards whatever reaches it): a record no
  logger filter saw (a logger made since the last tick, one routed to the security file
  by the user) is decided there, and its logger gets the logger filter for the next ones.

The decision is kept on the record (`_obs_flood`), so a record written to the security
file, the errors file and the console is counted once, and each of them gets it or not.

Keys, in windows of FLOOD_WINDOW seconds from the key's first record:

- a security record: (event type, or call site for a record that is no event; client),
  so one client's 140,000 failed logins cannot rotate the security history away, and one
  client's flood never mutes another's. The client is its network: the IPv4 address
  (FLOOD_IPV4_PREFIX, 32) or the IPv6 /64 (FLOOD_IPV6_PREFIX): addresses rotated inside one
  /64 are one client;
- any other record of a guarded logger: (call site), a storm of one error from one code
  path, whichever clients set it off.

The key also holds the logger and the level, so a summary reaches the same files as
the records it stands for. The first FLOOD_LIMIT records of a key in a window are
written as usual; the others are counted, and once the window is over one summary
line says how many: `repeated=<N> first=<time> last=<time>`. Lines written one by one
plus the `repeated=` counts equal the records logged, exactly, in every file.

The table is bounded: at most MAX_KEYS keys, and at most MAX_KEYS_PER_SOURCE of one client.
A new key past either bound closes the oldest (of the table, of that client) early: its
count is summarised like any window's, never lost, and no client is merged with another.
Closed windows wait for the tick in a table of at most MAX_CLOSED; past it (a stalled
writer under a flood from ever new clients) they wait merged per event type or call site
(client "*"), counts exact. A window keeps its first summarised record's message masked,
then capped at ARG_LIMIT.

Windows are closed by the writer's tick (no later record needed), and every pending
summary is written when the process drains (SIGTERM, exit). Each process counts its
own records: with N workers a window holds at most N x (FLOOD_LIMIT + 1) lines per key.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from observability.conf import obs_settings, on_reload
from observability.masking.escaping import ARG_LIMIT
from observability.masking.redaction import get_redactor
from observability.monitoring.metrics import count_flood_summary, count_security_event
from observability.output.writer import every_tick, writer
from observability.tracing.context import CONTEXT_ATTR, EMPTY, current, reset_context, set_context

#: Set on a summary record so the guard lets it through.
SUMMARY_ATTR = "_obs_flood_summary"
#: The guard's decision on a record (True: written, False: counted), taken once.
DECISION_ATTR = "_obs_flood"
#: Keys counted at once; a new key past it closes the oldest window early (summarised).
MAX_KEYS = 10_000
#: Keys one client (one source) may hold at once; past it, its own oldest is closed early.
MAX_KEYS_PER_SOURCE = 100
#: Windows closed early that may wait for the tick's summaries, each on its own.
MAX_CLOSED = 10_000
#: The client of summaries that wait merged (more than MAX_CLOSED between two ticks).
OTHER_CLIENTS = "*"
#: What a summary copies from the first record it stands for.
_COPIED = ("event_type", "severity")
#: How a logger's records are keyed: by client, by call site, or not at all.
SECURITY = "security"
STORM = "storm"
NEVER = "never"
#: A logger name's kind is remembered for this many names (logger names are few).
_KINDS_KEPT = 4096
_UNKNOWN = object()

Key = tuple[str, int, str, str]  # logger, level, event type or call site, client


@dataclass
class _Window:
    start: float
    written: int = 0
    suppressed: int = 0
    first: float = 0.0
    last: float = 0.0
    example: dict[str, Any] = field(default_factory=dict)


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def client_source(ip: Any) -> str:
    """The client a record's IP stands for: the IPv4 address (or its FLOOD_IPV4_PREFIX
    network), the IPv6 address's FLOOD_IPV6_PREFIX network (`2001:db8:1:2::/64`). An
    IPv4-mapped IPv6 address is its IPv4 client. Anything else (no client, or text that is
    no address) is no client: "-", never kept as a key of its own."""
    if type(ip) is not str or ip == EMPTY:
        return EMPTY
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return EMPTY
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    settings = obs_settings
    if isinstance(address, ipaddress.IPv4Address):
        prefix = settings.FLOOD_IPV4_PREFIX
        if prefix == 32:
            return str(address)
        return str(ipaddress.IPv4Network((int(address), prefix), strict=False))
    prefix = settings.FLOOD_IPV6_PREFIX
    network = ipaddress.IPv6Network((int(address), prefix), strict=False)  # no zone ID
    return str(network.network_address) if prefix == 128 else str(network)


_DJANGO_SECURITY = "django.security"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _django_event_type(logger_name: str) -> str:
    """`django.security.DisallowedHost` -> `django_disallowed_host` (a metrics label)."""
    last = logger_name.rsplit(".", 1)[-1] if logger_name != _DJANGO_SECURITY else "security"
    return "django_" + _CAMEL.sub("_", last).lower().replace(".", "_")


class FloodGuard(logging.Filter):
    """Each key's first FLOOD_LIMIT records per window, then one summary (a logger filter;
    `at_handler()` is the same decision where a record is written)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._windows: dict[Key, _Window] = {}
        self._sources: dict[str, dict[Key, None]] = {}  # a client's keys, oldest first
        self._closed: dict[Key, _Window] = {}  # over, waiting for the tick's summary
        self._roots: dict[str, str] = {}  # a guarded (or never guarded) logger -> its kind
        self._learned: set[str] = set()  # loggers seen writing to the security file
        #: Any logger name -> its kind (memo of kind(); FloodFilter reads it first).
        self.kinds: dict[str, str | None] = {}
        self._adopted: set[str] = set()  # loggers that carry the guard as a logger filter
        self._known = -1  # how many loggers existed when they were last looked over
        self._waiting: list[str] = []  # guarded names that were no logger yet (PlaceHolder)

    # -- which records

    def kind(self, name: str) -> str | None:
        """SECURITY, STORM, NEVER or None (not guarded) for a logger name: its nearest
        ancestor (itself included) named by the settings decides."""
        found = self.kinds.get(name, _UNKNOWN)
        if found is not _UNKNOWN:
            return found  # type: ignore[return-value]
        roots = self._roots
        kind = None
        probe = name
        while True:
            kind = roots.get(probe)
            if kind is not None:
                break
            dot = probe.rfind(".")
            if dot < 0:
                break
            probe = probe[:dot]
        if kind is None and name in self._learned:
            kind = SECURITY
        kinds = self.kinds
        if len(kinds) >= _KINDS_KEPT:  # a flood of logger names is not kept
            kinds.clear()
        kinds[name] = kind
        return kind

    def filter(self, record: logging.LogRecord) -> bool:
        """As a logger filter: decide for a record of a guarded logger."""
        attrs = record.__dict__
        decided = attrs.get(DECISION_ATTR)
        if decided is not None:
            return bool(decided)
        if attrs.get(SUMMARY_ATTR):
            return True
        kind = self.kind(record.name)
        if kind is None or kind == NEVER:
            return True
        return self.decide(record, kind)

    def at_handler(self, record: logging.LogRecord, security: bool) -> bool:
        """As a handler filter: the decision already taken for the record, or take it now
        for a record of a guarded logger (or any record, on the security file's handler)."""
        attrs = record.__dict__
        decided = attrs.get(DECISION_ATTR)
        if decided is not None:
            return bool(decided)
        kind = self.kinds.get(record.name, _UNKNOWN)
        if kind is None and not security:
            return True  # the usual record: a logger no setting names, a file not security's
        if attrs.get(SUMMARY_ATTR):
            return True
        if kind is _UNKNOWN:
            kind = self.kind(record.name)
        if kind is None:
            if not security:
                return True
            kind = SECURITY
            self._learned.add(record.name)
            self.kinds.pop(record.name, None)
        elif kind == NEVER:
            return True
        self._adopt(record.name)  # the logger's next records are decided before any handler
        return self.decide(record, str(kind))

    # -- counting

    def decide(self, record: logging.LogRecord, kind: str) -> bool:
        """Count the record under its key: True to write it, False when it is summarised."""
        if kind == SECURITY and record.name.startswith(_DJANGO_SECURITY):
            # Django's own security records, in the metrics before flood control decides
            # (log_security_event counts the layer's events itself).
            count_security_event(_django_event_type(record.name), record.levelname)
        settings = obs_settings
        limit = settings.FLOOD_LIMIT
        if not limit:
            return True
        key = self._key(record, kind)
        now = record.created
        with self._lock:
            windows = self._windows
            window = windows.get(key)
            if window is not None and now >= window.start + settings.FLOOD_WINDOW:
                self._close(key, window)
                window = None
            if window is None:
                self._make_room(key[3])
                window = windows[key] = _Window(now)
                self._sources.setdefault(key[3], {})[key] = None
                writer.start()  # its tick closes the window
            if window.written < limit:
                window.written += 1
                written = True
            else:
                if not window.suppressed:
                    window.first = now
                    window.example = self._example(record)
                window.suppressed += 1
                window.last = now
                written = False
        record.__dict__[DECISION_ATTR] = written
        return written

    def _make_room(self, source: str) -> None:
        """Close the oldest windows (of this client, of the table) that a new key would push
        past MAX_KEYS_PER_SOURCE or MAX_KEYS; their counts go to summaries."""
        keys = self._sources.get(source)
        if keys is not None and len(keys) >= MAX_KEYS_PER_SOURCE:
            oldest = next(iter(keys))
            self._close(oldest, self._windows[oldest])
        windows = self._windows
        while len(windows) >= MAX_KEYS:
            oldest = next(iter(windows))
            self._close(oldest, windows[oldest])

    @staticmethod
    def _client(record: logging.LogRecord) -> Any:
        attrs = record.__dict__
        ip = attrs.get("ip")
        if ip:
            return ip
        context = current()
        if context["request_id"] is None and "request" in attrs:
            # Django logs some security records after our middleware has returned (a bad
            # Host raised in it): the context the middleware left on the request.
            context = getattr(attrs["request"], CONTEXT_ATTR, context)
        return context.get("ip") or EMPTY

    def _key(self, record: logging.LogRecord, kind: str) -> Key:
        call_site = f"{record.pathname}:{record.lineno}"
        if kind == SECURITY:
            event_type = record.__dict__.get("event_type")
            what = str(event_type) if event_type else call_site
            return record.name, record.levelno, what, client_source(self._client(record))
        return record.name, record.levelno, call_site, EMPTY

    @staticmethod
    def _example(record: logging.LogRecord) -> dict[str, Any]:
        """What a summary shows of the first record it stands for. The message is masked,
        then capped (ARG_LIMIT): a table of MAX_KEYS windows never holds 8 KB Host headers."""
        attrs = record.__dict__
        example = {key: attrs[key] for key in _COPIED if key in attrs}
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        example["message"] = get_redactor().text(message, ARG_LIMIT)
        example["call_site"] = f"{record.module}.{record.funcName}:{record.lineno}"
        return example

    def _close(self, key: Key, window: _Window) -> None:
        del self._windows[key]
        keys = self._sources.get(key[3])
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._sources[key[3]]
        if not window.suppressed:
            return
        closed = self._closed
        if key not in closed and len(closed) >= MAX_CLOSED:
            # More closed windows than that wait for the tick (a writer stalled on a slow
            # disk under a flood from ever new clients): the rest wait as one per event
            # type or call site, their clients "*", counts exact.
            key = (*key[:3], OTHER_CLIENTS)
        pending = closed.get(key)
        if pending is None:
            closed[key] = window
        else:  # the same key closed twice before a tick: one summary stands for both
            pending.first = min(pending.first, window.first)
            pending.last = max(pending.last, window.last)
            pending.suppressed += window.suppressed

    # -- summaries

    def sweep(self, final: bool = False) -> None:
        """Write the summaries of windows that are over (of every window when draining);
        put the guard on loggers made since the last tick."""
        loggers = logging.Logger.manager.loggerDict
        if len(loggers) != self._known or any(
            not isinstance(loggers.get(name), logging.PlaceHolder) for name in self._waiting
        ):
            self.adopt_descendants()
        if not self._windows and not self._closed:
            return
        now = time.time()
        length = obs_settings.FLOOD_WINDOW
        with self._lock:
            for key, window in list(self._windows.items()):
                if final or now >= window.start + length:
                    self._close(key, window)
            closed, self._closed = self._closed, {}
        if not closed:
            return
        token = set_context({})  # a summary stands for many requests: none is its context
        try:
            for key, window in closed.items():
                self._summarise(key, window, length)
        finally:
            reset_context(token)

    def _summarise(self, key: Key, window: _Window, length: float) -> None:
        name, level, _, client = key
        example = window.example
        count = window.suppressed
        count_flood_summary(count)
        if "event_type" in example:
            message = (
                f"Security Event: {example['event_type']} - Severity: "
                f"{example.get('severity', '-')}, Repeated: {count} more from {client}"
            )
        else:
            message = f"Repeated: {count} more records like: {example['message']}"
        fields = {
            **{key: example[key] for key in _COPIED if key in example},
            "repeated": count,
            "first": _iso(window.first),
            "last": _iso(window.last),
            "window": length,
            SUMMARY_ATTR: True,
        }
        if "event_type" not in example:  # an event's call site is the event helper's
            fields["call_site"] = example["call_site"]
        if "/" in client or client == OTHER_CLIENTS:
            fields["client"] = client  # no address of its own (client.ip in ECS is one)
        elif client != EMPTY:
            fields["ip"] = client
        logger = logging.getLogger(name)
        record = logger.makeRecord(name, level, __file__, 0, message, (), None, "sweep", fields)
        logger.handle(record)

    # -- placement

    def _adopt(self, name: str) -> None:
        """Put the guard on an existing logger as a logger filter (never create one)."""
        if name in self._adopted:
            return
        logger = logging.Logger.manager.loggerDict.get(name)
        if name == "root":
            logger = logging.getLogger()
        if isinstance(logger, logging.Logger):
            logger.addFilter(self)
            self._adopted.add(name)

    def adopt_descendants(self) -> None:
        """Put the guard on every existing logger that is guarded by name."""
        loggers = logging.Logger.manager.loggerDict
        self._known = len(loggers)
        try:
            existing = list(loggers.items())
        except RuntimeError:  # another thread made a logger meanwhile: the next tick
            self._known = -1
            return
        waiting = []
        for name, logger in existing:
            if self.kind(name) in (SECURITY, STORM):
                if isinstance(logger, logging.Logger):
                    self._adopt(name)
                else:  # a PlaceHolder: when it becomes a logger the count stays the same
                    waiting.append(name)
        self._waiting = waiting

    def place(self) -> None:
        """Follow the settings: the guard on the loggers they name and their descendants,
        off every other."""
        settings = obs_settings
        roots = dict.fromkeys(settings.FLOOD_LOGGERS, STORM)
        for name in (settings.SECURITY_LOGGER, settings.AUTH_LOGGER, "django.security"):
            roots[name] = SECURITY
        roots[settings.REQUEST_LOGGER] = NEVER
        loggers = logging.Logger.manager.loggerDict
        for name in self._adopted:
            logger = loggers.get(name)
            if name == "root":
                logger = logging.getLogger()
            if isinstance(logger, logging.Logger):
                logger.removeFilter(self)
        self._adopted = set()
        self._learned = set()
        self._roots = roots
        self.kinds = {}
        for name, kind in roots.items():
            if kind is not NEVER:
                logging.getLogger(name)  # the named ones exist from now on
        self.adopt_descendants()
        writer.start()  # its tick looks over the loggers made from now on

    # -- state

    def size(self) -> int:
        """Keys counted now (bounded by MAX_KEYS)."""
        return len(self._windows)

    def pending(self) -> int:
        """Records counted but not yet in a summary (for tests and /health/)."""
        with self._lock:
            windows = [*self._windows.values(), *self._closed.values()]
            return sum(window.suppressed for window in windows)

    def forget(self) -> None:
        """Drop every count without a summary (tests start from nothing)."""
        with self._lock:
            self._windows = {}
            self._sources = {}
            self._closed = {}

    def after_fork_in_child(self) -> None:
        # The parent summarises what it counted; the child starts from nothing.
        self._lock = threading.Lock()
        self.forget()


guard = FloodGuard()
every_tick(guard.sweep)
os.register_at_fork(after_in_child=guard.after_fork_in_child)


@on_reload
def install() -> None:
    """Put the guard on the guarded loggers and their descendants (off the others)."""
    guard.place()
