"""Which loggers flood control guards, and the guard's place on each of them.

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
"""

from __future__ import annotations

import logging

from observability.conf import obs_settings
from observability.guard.flood_keys import DJANGO_SECURITY, NEVER, SECURITY, STORM
from observability.output.writer import writer

#: A logger name's kind is remembered for this many names (logger names are few).
_KINDS_KEPT = 4096
_UNKNOWN = object()


class GuardedLoggers(logging.Filter):
    """A filter that knows which loggers it guards and puts itself on them."""

    def __init__(self) -> None:
        super().__init__()
        self._roots: dict[str, str] = {}  # a guarded (or never guarded) logger -> its kind
        self._learned: set[str] = set()  # loggers seen writing to the security file
        #: Any logger name -> its kind (memo of kind(); FloodFilter reads it first).
        self.kinds: dict[str, str | None] = {}
        self._adopted: set[str] = set()  # loggers that carry the guard as a logger filter
        self._known = -1  # how many loggers existed when they were last looked over
        self._waiting: list[str] = []  # guarded names that were no logger yet (PlaceHolder)

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
        for name in (settings.SECURITY_LOGGER, settings.AUTH_LOGGER, DJANGO_SECURITY):
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
