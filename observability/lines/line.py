"""The Line: one neutral value for a log line, whatever its format; every formatter renders it.

A Line is built from a LogRecord (`Line.of_record`, for any record our filters saw) or
directly by the lifecycle, without a record, when only our own handlers would see it
(`observability.http.emit`). Every format renders the same value:

- `context`: the request's fields (`request_id`, `user_id`, ... and those bound later);
  an absent value is None: text writes `-` (the seed's grep recipes), JSON and ECS leave
  the key out;
- `fields`: the line's own fields (a lifecycle line's status and duration, a record's
  `extra`, an event's type and severity); numbers stay numbers;
- `details`: an event's or a metric's details, a namespace of their own, so they never
  collide with the context (`details.ip` is not the client's `ip`);
- `record_id`: the record's identity, the same in every file it is written to (an error
  is in the general and the errors file: readers show it once);
- `host`: the host that wrote it, when `OBSERVABILITY['HOST']` names one.

Every value in a Line is masked already (the redaction filter, or the lifecycle that
read the request); the formats escape and cap.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from types import CodeType
from typing import Any

from observability.output.records import (
    CONTEXT_SNAPSHOT_ATTR,
    DETAILS_ATTR,
    GIVEN_ATTR,
    RECORD_ID_ATTR,
    extra_keys,
)
from observability.tracing.context import CONTEXT_FIELDS, EMPTY

_NO_FIELDS: Mapping[str, Any] = {}
_CONTEXT_SET = frozenset(CONTEXT_FIELDS)


class CallSite:
    """Where a line was logged: a record's pathname, line number and function."""

    __slots__ = ("funcName", "lineno", "pathname")

    def __init__(self, pathname: str, lineno: int, funcName: str) -> None:
        self.pathname = pathname
        self.lineno = lineno
        self.funcName = funcName

    @classmethod
    def of_frame(cls, code: CodeType, lasti: int) -> CallSite:
        """A frame's place: its code and instruction offset (f_lasti), its line looked up."""
        return cls(code.co_filename, _line_of(code, lasti), code.co_name)

    @property
    def module(self) -> str:
        pathname = self.pathname
        module = _modules.get(pathname) if type(pathname) is str else None
        if module is None:
            module = os.path.splitext(os.path.basename(pathname))[0]
            if type(pathname) is str and len(_modules) < 1024:  # a process's files are few
                _modules[pathname] = module
        return module


#: Module names by source file: a layout that shows `module` needs one for every record.
_modules: dict[str, str] = {}


@functools.lru_cache(maxsize=256)
def _line_of(code: CodeType, lasti: int) -> int:
    """The source line of the instruction at byte offset `lasti` (a frame's f_lasti)."""
    for start, end, line in code.co_lines():
        if start <= lasti < end and line is not None:
            return line
    return code.co_firstlineno


class Line:
    """One log line: time, level, logger, message, context, fields, details, exception text,
    call site, process, thread, identity and host."""

    __slots__ = (
        "_site",
        "_thread",
        "context",
        "details",
        "exc_text",
        "fields",
        "host",
        "level",
        "logger",
        "message",
        "process",
        "record_id",
        "time",
    )

    def __init__(
        self,
        time: float,
        level: int,
        logger: str,
        message: str,
        context: Mapping[str, Any],
        fields: Mapping[str, Any] = _NO_FIELDS,
        site: CallSite | tuple[CodeType, int] | None = None,
        process: int | None = None,
        thread: threading.Thread | str | None = None,
        details: Mapping[str, Any] | None = None,
        exc_text: str | None = None,
        record_id: str | None = None,
        host: str | None = None,
    ) -> None:
        self.time = time
        self.level = level
        self.logger = logger
        self.message = message
        self.context = context
        self.fields = fields
        self._site = site
        self.process = _pid if process is None else process
        self._thread = thread
        self.details = details
        self.exc_text = exc_text
        self.record_id = record_id or next(_record_ids)
        self.host = host

    @property
    def site(self) -> CallSite | None:
        """Where it was logged (a frame's code and offset are read when a layout shows it)."""
        site = self._site
        if type(site) is tuple:
            site = self._site = CallSite.of_frame(*site)
        return site  # type: ignore[return-value]

    @property
    def levelname(self) -> str:
        return logging.getLevelName(self.level)

    @property
    def thread(self) -> str:
        """The name of the thread it was logged on (None when made: the current one, for a
        Line rendered at once; a held Line is given its thread)."""
        thread = self._thread
        if thread is None:
            thread = self._thread = threading.current_thread()
        return thread if type(thread) is str else thread.name  # type: ignore[union-attr]

    @classmethod
    def of_record(cls, record: logging.LogRecord) -> Line:
        """The Line a record stands for, after our filters (context, masking) ran on it."""
        attrs = record.__dict__
        snapshot: Mapping[str, Any] | None = attrs.get(CONTEXT_SNAPSHOT_ATTR)
        fields: dict[str, Any] = {}
        context: Mapping[str, Any]
        if snapshot is None:  # a record our filter did not see: its attributes as they are
            context = {}
            for key in CONTEXT_FIELDS:
                value = attrs.get(key)
                context[key] = None if value == EMPTY else value
            for key in extra_keys(record):
                fields[key] = attrs[key]
        else:
            given = attrs.get(GIVEN_ATTR)
            context = snapshot  # the context itself: its text is rendered once for all
            if given is not None:
                context = {
                    key: attrs[key] if key in given and key in _CONTEXT_SET else value
                    for key, value in snapshot.items()
                }
            for key in extra_keys(record):
                if key not in snapshot or (given is not None and key in given):
                    fields[key] = attrs[key]  # given in `extra`: it wins over a bound one
        details = attrs.get(DETAILS_ATTR)
        exc_text = record.exc_text
        if record.stack_info:
            exc_text = f"{exc_text}\n{record.stack_info}" if exc_text else record.stack_info
        record_id = attrs.get(RECORD_ID_ATTR)
        if record_id is None:  # the same identity for every handler that formats it
            record_id = attrs[RECORD_ID_ATTR] = new_record_id()
        return cls(
            record.created,
            record.levelno,
            record.name,
            record.getMessage(),
            context,
            fields,
            details=details if isinstance(details, dict) else None,
            exc_text=exc_text or None,
            site=CallSite(record.pathname, record.lineno, record.funcName),
            process=record.process,
            thread=record.threadName,
            record_id=record_id,
        )


# --- identity ------------------------------------------------------------------------
# A process's prefix (a letter, four letters or digits, a letter) and a hexadecimal
# counter: unique within a process's life, and across processes by the random prefix.
# It can never hold a run of 13 digits (a card number to a PCI scanner): the prefix's
# digit runs are at most four long and end at a letter, and the counter would need more
# than 10^15 records to write 13 digits in a row.
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _new_prefix() -> str:
    raw = os.urandom(6)
    middle = "".join(_ALNUM[byte % 36] for byte in raw[1:5])
    return _LETTERS[raw[0] % 26] + middle + _LETTERS[raw[5] % 26]


def _identities() -> Iterator[str]:
    """The process's record identities, one at a time (a C loop: map over a counter)."""
    return map((_new_prefix() + "{:x}").format, itertools.count(1))


_record_ids = _identities()


def new_record_id() -> str:
    """A new record identity, e.g. `k3x9ab1f` (prefix + hexadecimal counter)."""
    return next(_record_ids)


_pid = os.getpid()


def _after_fork_in_child() -> None:
    global _record_ids, _pid
    _record_ids = _identities()
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)
