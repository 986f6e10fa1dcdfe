"""Follow the live files as they are written, across rotations (logtrace --follow)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from observability.logtrace.files import file_tags
from observability.logtrace.records import Record, parse_line

POLL = 0.25  # seconds between two looks at the files


def follow_files(directory: Path) -> Iterator[Record]:
    """Yield new records from the live files as they are written; reopen after rotation."""
    state: dict[Path, tuple[int, int]] = {}
    for name in file_tags():
        path = directory / name
        if path.exists():
            stat = path.stat()
            state[path] = (stat.st_ino, stat.st_size)
    while True:
        for name, tag in file_tags().items():
            path = directory / name
            try:
                stat = path.stat()
            except OSError:
                continue
            inode, offset = state.get(path, (stat.st_ino, 0))
            if stat.st_ino != inode or stat.st_size < offset:
                offset = 0  # rotated or truncated: the new file from its start
            if stat.st_size > offset:
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                complete = chunk.rfind(b"\n") + 1
                for line in chunk[:complete].split(b"\n")[:-1]:
                    record = parse_line(line.decode("utf-8", errors="replace"), tag)
                    if record is not None:
                        yield record
                offset += complete
            state[path] = (stat.st_ino, offset)
        time.sleep(POLL)
