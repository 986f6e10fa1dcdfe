"""The log files on disk: which exist (rotated and gzipped backups too), and their lines.

Lines are read oldest first, newest first (from the end of the live file back through each
backup, or from the first line written after a given time: `newest_first(after=...)` finds
it by bisection), or only those that hold a needle. Everything streams: memory stays flat
however large the logs are (a gzipped backup read backwards is the one exception: it is
read whole, and it is capped by the handler's size). Searching for a request's lines is
done on bytes in C-sized blocks, parsing only the lines that match.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

from observability.conf import obs_settings

_ROTATED = re.compile(r"\.(\d+)(\.gz)?$")
CHUNK = 8 * 1024 * 1024
BLOCK = 256 * 1024  # reading backwards: small blocks, as a page of requests is near the end
PROBE = 8 * 1024  # bisecting by time: what one look at a position reads
PROBE_LINES = 16  # lines tried after a position for one whose time can be read


def file_tags() -> dict[str, str]:
    """File name -> the short tag shown beside its lines ("requests", "general" ...)."""
    return {name: tag for tag, name in obs_settings.LOG_FILES.items()}


def log_files(directory: Path, tags: list[str] | None = None) -> list[tuple[str, Path]]:
    """(tag, path) of every file and rotated backup, oldest first within each file."""
    found = []
    for name, tag in file_tags().items():
        if tags is not None and tag not in tags:
            continue
        backups = []
        for path in directory.glob(name + ".*"):
            suffix = path.name[len(name) :]
            match = _ROTATED.fullmatch(suffix)
            if match:
                backups.append((int(match.group(1)), path))
        found += [(f"{tag}.{n}", path) for n, path in sorted(backups, reverse=True)]
        live = directory / name
        if live.exists():
            found.append((tag, live))
    return found


#: When a line was written, from its bytes (None for a line that is not one of ours).
LineTime = Callable[[bytes], "datetime | None"]


def newest_first(
    directory: Path,
    tag: str,
    *,
    after: datetime | None = None,
    line_time: LineTime | None = None,
) -> Iterator[tuple[str, bytes]]:
    """(tag, line) of one file, its live file first and then each backup, newest line first.

    With `after` (and `line_time` to read a line's time), lines written after `after` are
    passed over without being read: the newest files whose first line is later are skipped
    and the file that spans `after` is entered where its lines become later, found by
    bisection (lines are in time order but for a few seconds; the caller leaves a margin).
    """
    for file_tag, path in reversed(log_files(directory, [tag])):
        end = None
        if after is not None and line_time is not None:
            end = seek_after(path, after, line_time)
            if end == 0:
                continue  # every line of this file is later: the next (older) one
            after = None  # the older files are read whole
        for line in lines_backwards(path, end):
            yield file_tag, line


def seek_after(path: Path, after: datetime, line_time: LineTime) -> int | None:
    """A line boundary in `path` from which on every line is later than `after`, as far as
    bisecting by the lines' times tells (None: the end of the file, or it cannot be read).

    Reading backwards from there reads every line written up to `after`. About 2 x log2 of
    the file's size in looks of PROBE bytes; a stretch of foreign lines reads as later. A
    file whose last line is older than its first (the clock was set back) is not bisected:
    it is read from its end.
    """
    try:
        with _open_seekable(path) as handle:
            size = handle.seek(0, 2)
            first = _probe(handle, 0, size, line_time)
            last = _last_time(handle, size, line_time)
            if first is not None and (last is None or last < first[1]):
                return None
            if first is not None and first[1] > after:
                return 0
            low, high = 0, size
            while high - low > PROBE:
                middle = (low + high) // 2
                found = _probe(handle, middle, high, line_time)
                if found is None:
                    low = middle  # nothing readable up to `high`: look further up
                elif found[1] > after:
                    high = found[0]
                else:
                    low = found[0] + 1
            return None if high >= size else high
    except (OSError, EOFError, gzip.BadGzipFile):
        return None


def _open_seekable(path: Path) -> IO[bytes]:
    """A file, or a gzipped backup decompressed into memory (gzip seeks slowly backwards)."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as handle:
            return io.BytesIO(handle.read())
    return open(path, "rb")


def _probe(
    handle: IO[bytes], position: int, limit: int, line_time: LineTime
) -> tuple[int, datetime] | None:
    """(start, time) of the first line starting at or after `position` (before `limit`)
    whose time can be read, trying PROBE_LINES lines; None when there is none."""
    handle.seek(position)
    data = handle.read(min(PROBE, max(limit - position, 0)))
    offset = 0
    if position > 0:  # inside a line: the next one starts after its line break
        offset = data.find(b"\n") + 1
        if offset == 0:
            return None
    for _ in range(PROBE_LINES):
        end = data.find(b"\n", offset)
        if end == -1:
            return None  # a line longer than what was read, or the end: unknown
        when = line_time(data[offset:end])
        if when is not None:
            return position + offset, when
        offset = end + 1
    return None


def _last_time(handle: IO[bytes], size: int, line_time: LineTime) -> datetime | None:
    """The time of the last complete line (of one of the last PROBE_LINES) that has one."""
    handle.seek(max(size - PROBE, 0))
    lines = handle.read(PROBE).split(b"\n")[1:-1]  # the first may be cut, the last unfinished
    for line in reversed(lines[-PROBE_LINES:]):
        when = line_time(line)
        if when is not None:
            return when
    return None


def lines_backwards(path: Path, end: int | None = None) -> Iterator[bytes]:
    """The complete lines of a file, last first (a line still being written is not yet one).

    `end`: start from this line boundary instead of the end of the file.
    """
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                data = handle.read()
            if end is not None:
                data = data[:end]
            yield from (line for line in reversed(data.split(b"\n")) if line)
            return
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            position = size if end is None else min(end, size)
            start = b""  # the start of the oldest line read so far: its beginning is further back
            writing = True  # until the last line break: a line another process is still writing
            while position > 0:
                step = min(BLOCK, position)
                position -= step
                handle.seek(position)
                pieces = (handle.read(step) + start).split(b"\n")
                start = pieces[0]
                if len(pieces) == 1:
                    continue
                if writing:
                    pieces.pop()
                    writing = False
                for line in reversed(pieces[1:]):
                    if line:
                        yield line
            if start and not writing:
                yield start
    except (OSError, EOFError):
        return


def open_binary(path: Path) -> IO[bytes]:
    """A file or a gzipped backup, for reading bytes."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def lines_holding(path: Path, needles: Sequence[bytes], core: bytes | None = None) -> Iterator[str]:
    """The lines of `path` that hold any of `needles`, in file order, each once.

    `core`: bytes every needle holds (a request ID): the data is searched for it once, and
    each place it is found is checked against the needles, so an ID found in few lines costs
    one pass. Past HITS places in a block (an ID such as `.` is everywhere), or without a
    core, each needle is looked for on its own: one pass per needle, plus one step per line
    that holds one. Every search is `bytes.find` (C speed, no pattern).
    """
    try:
        with open_binary(path) as handle:
            carry = b""
            while True:
                block = handle.read(CHUNK)
                data = carry + block
                if not block:  # the last line may have no line break: give it one
                    if data:
                        yield from _holding(data + b"\n", needles, core)
                    return
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    carry = data
                    continue
                carry = data[cut:]
                yield from _holding(data[:cut], needles, core)
    except (OSError, EOFError, gzip.BadGzipFile):
        return


#: Places of the core checked one by one in a block before each needle is searched for.
HITS = 4096


def _holding(data: bytes, needles: Sequence[bytes], core: bytes | None) -> Iterator[str]:
    starts: dict[int, int] = {}  # line start -> line end, of every line holding a needle
    if core and all(core in needle for needle in needles):
        placed = [(needle, needle.index(core)) for needle in needles]
        found = data.find(core)
        hits = 0
        while found != -1 and hits < HITS:
            hits += 1
            if any(data.startswith(needle, found - at) for needle, at in placed if found >= at):
                start = data.rfind(b"\n", 0, found) + 1
                end = data.find(b"\n", found)
                starts[start] = end
                found = data.find(core, end)
            else:
                found = data.find(core, found + 1)
        if found == -1:
            needles = ()  # every place was checked
    for needle in needles:
        found = data.find(needle)
        while found != -1:
            start = data.rfind(b"\n", 0, found) + 1
            end = data.find(b"\n", found)  # the data ends with one: never -1
            starts[start] = end
            found = data.find(needle, end)
    for start in sorted(starts):
        yield data[start : starts[start]].decode("utf-8", errors="replace")


def lines_containing(path: Path, needle: str | re.Pattern[bytes]) -> Iterator[str]:
    """The lines of `path` that contain `needle` (text or a bytes pattern), searched in C."""
    target = re.compile(re.escape(needle.encode())) if isinstance(needle, str) else needle
    try:
        with open_binary(path) as handle:
            carry = b""
            while block := handle.read(CHUNK):
                data = carry + block
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    carry = data
                    continue
                carry = data[cut:]
                yield from _matches(data[:cut], target)
            if carry:
                yield from _matches(carry, target)
    except (OSError, EOFError):
        return


def _matches(data: bytes, target: re.Pattern[bytes]) -> Iterator[str]:
    found = target.search(data)
    while found is not None:
        position = found.start()
        start = data.rfind(b"\n", 0, position) + 1
        end = data.find(b"\n", position)
        end = len(data) if end == -1 else end
        yield data[start:end].decode("utf-8", errors="replace")
        found = target.search(data, end)
