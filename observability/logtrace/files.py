"""The log files on disk: which exist (rotated and gzipped backups too), and their lines.

Lines are read oldest first, newest first (from the end of the live file back through each
backup), or only those that contain a needle. Everything streams: memory stays flat however
large the logs are (a gzipped backup read backwards is the one exception: it is read whole,
and it is capped by the handler's size). Searching for a request's lines is done on bytes
in C-sized blocks, parsing only the lines that match.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from observability.conf import obs_settings

_ROTATED = re.compile(r"\.(\d+)(\.gz)?$")
CHUNK = 8 * 1024 * 1024
BLOCK = 256 * 1024  # reading backwards: small blocks, as a page of requests is near the end


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


def newest_first(directory: Path, tag: str) -> Iterator[tuple[str, bytes]]:
    """(tag, line) of one file, its live file first and then each backup, newest line first."""
    for file_tag, path in reversed(log_files(directory, [tag])):
        for line in lines_backwards(path):
            yield file_tag, line


def lines_backwards(path: Path) -> Iterator[bytes]:
    """The complete lines of a file, last first (a line still being written is not yet one)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                data = handle.read()
            yield from (line for line in reversed(data.split(b"\n")) if line)
            return
        with open(path, "rb") as handle:
            position = handle.seek(0, 2)
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
