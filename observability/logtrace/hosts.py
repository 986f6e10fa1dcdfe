"""A central root: one folder per host, each holding that host's files (README, "Several hosts").

rsyslog's central server writes `<root>/<host>/<file name>`; the readers read such a root
as they read one log directory: `places()` names the folders to read (the directory itself
when it holds our files, else each host folder that does), every record carries its
`host`, lines of several hosts are merged by time, and a record delivered twice (shipping
is at-least-once) is read once: `RecordKeys` tells a line already seen by the host, the
file and the record's identity (`record_id`).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path

from observability.logtrace.files import LineTime, log_files, newest_first
from observability.logtrace.records import Record

#: How a record names itself in each layout (text and JSON: record_id; ECS: event.id).
_IDENTITY_FIELDS = ("record_id", "event.id")


def places(directory: Path) -> list[tuple[str, Path]]:
    """(host, folder) to read: ("", directory) when it holds log files itself; otherwise each
    sub-folder that holds some, named by the folder (a central root), sorted by name."""
    if log_files(directory):
        return [("", directory)]
    try:
        folders = sorted(p for p in directory.iterdir() if p.is_dir())
    except OSError:
        return [("", directory)]
    found = [(folder.name, folder) for folder in folders if log_files(folder)]
    return found or [("", directory)]


def is_root(directory: Path) -> bool:
    """Whether `directory` is a root of host folders (not a log directory itself)."""
    return any(host for host, _ in places(directory))


def identity(record: Record) -> tuple[str, str, str]:
    """What makes a record one: its host, its file (without a backup's number), its
    record_id (the whole line for a line that has none)."""
    record_id = _record_id(record)
    return record.host, record.lane, record.raw if record_id is None else record_id


class RecordKeys:
    """The records already read: a second delivery of one is passed over."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, str]] = set()

    def first_time(self, record: Record) -> bool:
        key = identity(record)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def unique(records: Iterable[Record]) -> list[Record]:
    """`records` with each record once (the first of its deliveries), and a record written
    to several files (an error in the general and the errors file) once, naming them all
    (`also_in`)."""
    keys = RecordKeys()
    kept: list[Record] = []
    shown_at: dict[tuple[str, str], int] = {}  # (host, record_id): where kept holds it
    for record in records:
        if not keys.first_time(record):
            continue
        record_id = _record_id(record)
        if record_id is None:
            kept.append(record)
            continue
        at = shown_at.setdefault((record.host, record_id), len(kept))
        if at == len(kept):
            kept.append(record)
            continue
        shown = kept[at]
        if record.lane == shown.lane:
            continue
        if _COPIES.get(record.lane, 0) < _COPIES.get(shown.lane, 0):
            # The requests or general file's line is the one shown, the others named.
            record.also_in, shown.also_in = (*shown.also_in, shown.file), ()
            kept[at] = shown = record
        else:
            shown.also_in = (*shown.also_in, record.file)
    return kept


#: Files that hold copies of records another file holds too: shown after it, by name.
_COPIES = {"errors": 1, "debug": 2}


def _record_id(record: Record) -> str | None:
    for name in _IDENTITY_FIELDS:
        value = record.fields.get(name)
        if value:
            return str(value)
    return None


def newest_first_everywhere(
    directory: Path,
    tag: str,
    *,
    after: datetime | None = None,
    line_time: LineTime,
    read: Callable[..., Iterator[tuple[str, bytes]]] = newest_first,
    host: str | None = None,
) -> Iterator[tuple[str, bytes, str]]:
    """(file tag, line, host) of one file of every host, newest line first across hosts
    (each host's lines in their file order; a line without a readable time keeps the
    place of the line before it). `read`: how one folder is read (`files.newest_first`);
    `host`: that host's folder only."""
    found = [place for place in places(directory) if host is None or place[0] == host]
    if len(found) == 1:
        name, folder = found[0]
        for file_tag, raw in read(folder, tag, after=after, line_time=line_time):
            yield file_tag, raw, name
        return
    streams = [
        _timed(name, read(folder, tag, after=after, line_time=line_time), line_time)
        for name, folder in found
    ]
    for _, _, file_tag, raw, name in heapq.merge(*streams):
        yield file_tag, raw, name


_order = itertools.count()


def _timed(
    host: str, lines: Iterator[tuple[str, bytes]], line_time: LineTime
) -> Iterator[tuple[float, int, str, bytes, str]]:
    last = float("-inf")
    for file_tag, raw in lines:
        when = line_time(raw)
        if when is not None:
            last = -when.timestamp()
        yield last, next(_order), file_tag, raw, host
