"""The log files on disk: which exist (rotated and gzipped backups too), and their lines.

Everything streams: memory stays flat however large the logs are. Searching for a
request's lines is done on bytes in C-sized blocks, parsing only the lines that match.
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


def is_live(path: Path) -> bool:
    return _ROTATED.search(path.name) is None


def open_binary(path: Path) -> IO[bytes]:
    """A file or a gzipped backup, for reading bytes."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def read_lines(path: Path) -> Iterator[str]:
    try:
        with open_binary(path) as handle:
            for line in handle:
                yield line.decode("utf-8", errors="replace")
    except (OSError, EOFError):
        return


def is_json_file(path: Path) -> bool:
    try:
        with open_binary(path) as handle:
            return handle.read(1) == b"{"
    except (OSError, EOFError):
        return False


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
