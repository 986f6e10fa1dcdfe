"""Read the log files back: parse text and JSON lines, find one request's story, list requests.

Streams every file (rotated backups first, gzip included): memory stays flat however
large the logs are. Lines that are not ours are skipped.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from observability.logconfig import LOG_FILES

FILE_TAGS = {name: handler.split("_")[0] for handler, (name, *_rest) in LOG_FILES.items()}
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_TEXT = re.compile(
    r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"\[([^\]\s]+)\] "
)
_ROTATED = re.compile(r"\.(\d+)(\.gz)?$")
_TOKEN = re.compile(r'([A-Za-z_][A-Za-z0-9_.\-]*)=("(?:[^"\\]|\\.)*"|\S*)')


@dataclass
class Record:
    time: datetime
    level: str
    logger: str
    message: str
    fields: dict[str, Any]
    traceback: str
    file: str
    raw: str
    order: int = 0

    @property
    def request_id(self) -> str:
        return str(self.fields.get("request_id", "-"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "timestamp": self.time.isoformat(timespec="milliseconds"),
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
            "fields": self.fields,
            "traceback": self.traceback or None,
        }


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def parse_tokens(text: str) -> dict[str, str]:
    if '"' not in text:  # no quoted value: plain splitting is several times faster
        return dict(part.partition("=")[::2] for part in text.split(" ") if "=" in part)
    return {key: _unquote(value) for key, value in _TOKEN.findall(text)}


def parse_line(line: str, file: str = "") -> Record | None:
    """A text or JSON line of ours as a Record; None for anything else."""
    line = line.rstrip("\n")
    if line.startswith("{"):
        return _parse_json(line, file)
    match = _TEXT.match(line)
    if match is None:
        return None
    stamp, level, logger = match.groups()
    try:  # slicing is ~5x faster than strptime, and this runs for every line read
        when = datetime(
            int(stamp[0:4]),
            int(stamp[5:7]),
            int(stamp[8:10]),
            int(stamp[11:13]),
            int(stamp[14:16]),
            int(stamp[17:19]),
            int(stamp[20:23]) * 1000,
            tzinfo=UTC,
        )
    except ValueError:
        return None
    rest = line[match.end() :]
    message, _, tail = rest.partition(" | ")
    tokens, _, traceback = tail.partition(" | ")
    return Record(when, level, logger, message, parse_tokens(tokens), traceback, file, line)


def _parse_json(line: str, file: str) -> Record | None:
    try:
        data = json.loads(line)
        when = datetime.fromisoformat(data.pop("timestamp"))
        level = str(data.pop("level"))
        logger = str(data.pop("logger"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    message = str(data.pop("message", ""))
    traceback = str(data.pop("exc_info", "") or "")
    return Record(when, level, logger, message, data, traceback, file, line)


def log_files(directory: Path, names: list[str] | None = None) -> list[tuple[str, Path]]:
    """(tag, path) of every file and rotated backup, oldest first within each file."""
    found = []
    for name in names or list(FILE_TAGS):
        tag = FILE_TAGS.get(name, name)
        backups = []
        for path in directory.glob(name + ".*"):
            match = _ROTATED.search(path.name[len(name) :])
            if match and path.name[len(name) :] == match.group(0):
                backups.append((int(match.group(1)), path))
        found += [(f"{tag}.{n}", path) for n, path in sorted(backups, reverse=True)]
        live = directory / name
        if live.exists():
            found.append((tag, live))
    return found


CHUNK = 8 * 1024 * 1024


def lines_containing(path: Path, needle: str | re.Pattern[bytes]) -> Iterator[str]:
    """The lines of `path` that contain `needle` (text or a bytes pattern), searched in C."""
    target = re.compile(re.escape(needle.encode())) if isinstance(needle, str) else needle
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            carry = b""
            while True:
                block = handle.read(CHUNK)
                if not block:
                    break
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


def _is_json_file(path: Path) -> bool:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            return handle.read(1) == b"{"
    except (OSError, EOFError):
        return False


def prefilter(filters: Filters) -> re.Pattern[bytes] | None:
    """A pattern every text line of a matching request's terminal line must contain.

    Listing with --user, --ip or --path then parses only the lines that can matter
    (terminal and slow lines carry the whole context) instead of every line.
    """
    from observability.formatters import render_value

    def token(key: str, value: str) -> bytes:
        return re.escape(f"{key}={render_value(value)} ".encode())

    if filters.user is not None:
        user = filters.user
        return re.compile(token("user_id", user) + b"|" + token("username", user))
    if filters.ip is not None:
        return re.compile(token("ip", filters.ip))
    if filters.path is not None:
        return re.compile(b'path="?' + re.escape(filters.path.encode()))
    return None


def read_lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            yield from handle
    except (OSError, EOFError):
        return


@dataclass
class Filters:
    user: str | None = None
    ip: str | None = None
    path: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    slow: bool = False
    errors: bool = False
    level: int = 0

    def time_ok(self, when: datetime) -> bool:
        return (self.since is None or when >= self.since) and (
            self.until is None or when <= self.until
        )


@dataclass
class Summary:
    request_id: str
    first: datetime
    last: datetime
    method: str = "-"
    path: str = "-"
    user_id: str = "-"
    username: str = "-"
    ip: str = "-"
    status: str = "-"
    duration: str = "-"
    slow: bool = False
    failed: bool = False
    max_level: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    ended: bool = False
    saw_start: bool = False

    def add(self, record: Record) -> None:
        fields = record.fields
        self.first = min(self.first, record.time)
        self.last = max(self.last, record.time)
        self.counts[record.file] = self.counts.get(record.file, 0) + 1
        self.max_level = max(self.max_level, LEVELS.get(record.level, 0))
        for key in ("method", "path", "ip"):
            if getattr(self, key) == "-" and fields.get(key, "-") != "-":
                setattr(self, key, str(fields[key]))
        if fields.get("user_id", "-") not in ("-", None) and record.logger.endswith(".api"):
            self.user_id = str(fields["user_id"])
            self.username = str(fields.get("username", "-"))
        message = record.message
        if message.startswith("API Request started"):
            self.saw_start = True
        elif message.startswith(("API Request completed", "API Request failed")):
            self.status = str(fields.get("status", self.status))
            self.duration = str(fields.get("duration", self.duration))
            if not self.saw_start:  # listing with a prefilter reads no started line
                with contextlib.suppress(TypeError, ValueError, OverflowError):
                    self.first = min(
                        self.first, record.time - timedelta(seconds=float(self.duration))
                    )
            self.failed = self.failed or message.startswith("API Request failed")
            self.ended = True
            if self.user_id == "-" and fields.get("user_id", "-") not in ("-", None):
                self.user_id = str(fields["user_id"])
                self.username = str(fields.get("username", "-"))
        elif message.startswith("Slow API request"):
            self.slow = True

    def matches(self, filters: Filters) -> bool:
        if filters.user is not None and filters.user not in (self.user_id, self.username):
            return False
        if filters.ip is not None and self.ip != filters.ip:
            return False
        if filters.path is not None and not self.path.startswith(filters.path):
            return False
        if filters.slow and not self.slow:
            return False
        if filters.errors and not (self.failed or self.status.startswith("5")):
            return False
        if filters.level and self.max_level < filters.level:
            return False
        return filters.time_ok(self.first)

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "started": self.first.isoformat(timespec="milliseconds"),
            "method": self.method,
            "path": self.path,
            "user_id": self.user_id,
            "username": self.username,
            "ip": self.ip,
            "status": self.status,
            "duration": self.duration,
            "slow": self.slow,
            "failed": self.failed,
            "records": dict(self.counts),
        }

    def line(self) -> str:
        flags = " ".join(f for f, on in (("SLOW", self.slow), ("FAILED", self.failed)) if on)
        return (
            f"{self.first:%Y-%m-%d %H:%M:%S} {self.request_id} {self.method} {self.path} "
            f"status={self.status} duration={self.duration} user={self.username}({self.user_id}) "
            f"ip={self.ip} {flags}".rstrip()
        )


def trace(directory: Path, request_id: str, filters: Filters) -> tuple[Summary, list[Record]]:
    """Every record of one request ID from every file, in time order."""
    records: list[Record] = []
    needle = f"{request_id}"
    order = 0
    for tag, path in log_files(directory):
        for line in lines_containing(path, needle):
            record = parse_line(line, tag)
            if record is None or record.request_id != request_id:
                continue
            if not filters.time_ok(record.time) or LEVELS.get(record.level, 0) < filters.level:
                continue
            order += 1
            record.order = order
            records.append(record)
    records.sort(key=lambda r: (r.time, _rank(r.message), r.order))
    return summarise(request_id, records), records


def summarise(request_id: str, records: list[Record]) -> Summary:
    summary = Summary(request_id, records[0].time if records else _EPOCH, _EPOCH)
    for record in records:
        summary.add(record)
    return summary


def split_by_request(records: list[Record]) -> list[list[Record]]:
    """The records of one request ID, one list per request that used it (by span ID).

    A client can send another request's ID; each request still has its own span ID, so
    the stories stay apart. Records without a span ID join the only request there is, or
    form a group of their own when several requests shared the ID.
    """
    groups: dict[str, list[Record]] = {}
    for record in records:
        groups.setdefault(str(record.fields.get("span_id", "-")), []).append(record)
    spans = [span for span in groups if span != "-"]
    if len(spans) <= 1:
        return [records] if records else []
    return [groups[span] for span in spans] + ([groups["-"]] if "-" in groups else [])


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _rank(message: str) -> int:
    """Within one millisecond: the started line first, the terminal and slow lines last."""
    if message.startswith("API Request started"):
        return 0
    if message.startswith(("API Request completed", "API Request failed")):
        return 2
    if message.startswith("Slow API request"):
        return 3
    return 1


MAX_OPEN = 100_000


def list_requests(directory: Path, filters: Filters, limit: int) -> list[Summary]:
    """One summary per matching request (from the requests file), newest last.

    Memory stays bounded: requests still open, plus a short window of ended ones (a slow
    warning follows its terminal line), plus the last `limit` matches.
    """
    open_requests: OrderedDict[str, Summary] = OrderedDict()
    ended: OrderedDict[str, Summary] = OrderedDict()
    done: deque[Summary] = deque(maxlen=limit)
    pattern = prefilter(filters)
    for tag, path in log_files(directory, ["billing_api_requests.log"]):
        if pattern is None or _is_json_file(path):
            lines = read_lines(path)
        else:
            lines = lines_containing(path, pattern)
        for line in lines:
            record = parse_line(line, tag)
            if record is None or record.request_id == "-":
                continue
            rid = record.request_id
            summary = open_requests.get(rid) or ended.get(rid)
            if summary is None:
                summary = open_requests[rid] = Summary(rid, record.time, record.time)
                if len(open_requests) > MAX_OPEN:  # started, never ended: forget the oldest
                    _flush(open_requests.popitem(last=False)[1], filters, done)
            was_ended = summary.ended
            summary.add(record)
            if summary.ended and not was_ended:
                ended[rid] = open_requests.pop(rid, summary)
                while len(ended) > ENDED_WINDOW:
                    _flush(ended.popitem(last=False)[1], filters, done)
    for summary in [*ended.values(), *open_requests.values()]:
        _flush(summary, filters, done)
    return sorted(done, key=lambda s: s.first)


ENDED_WINDOW = 2000


def _flush(summary: Summary, filters: Filters, done: deque[Summary]) -> None:
    if summary.matches(filters):
        done.append(summary)


def parse_when(value: str, now: datetime | None = None) -> datetime:
    """ISO time (UTC unless it says otherwise) or a relative age such as 15m, 2h, 1d, 30s."""
    now = now or datetime.now(UTC)
    match = re.fullmatch(r"(\d+)([smhd])", value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit] * amount
        return now - timedelta(seconds=seconds)
    when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def follow_files(directory: Path) -> Iterator[Record]:
    """Yield new records from the live files as they are written; reopen after rotation."""
    import time

    state: dict[Path, tuple[int, int]] = {}
    for _tag, path in log_files(directory):
        if path.suffix != ".gz" and not _ROTATED.search(path.name):
            stat = path.stat()
            state[path] = (stat.st_ino, stat.st_size)
    while True:
        for name, tag in FILE_TAGS.items():
            path = directory / name
            try:
                stat = path.stat()
            except OSError:
                continue
            inode, offset = state.get(path, (stat.st_ino, 0))
            if stat.st_ino != inode or stat.st_size < offset:
                offset = 0  # rotated or truncated: the new file from its start
            if stat.st_size > offset:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                    complete = chunk.rfind("\n") + 1
                    for line in chunk[:complete].splitlines():
                        record = parse_line(line, tag)
                        if record is not None:
                            yield record
                    offset += len(chunk[:complete].encode("utf-8"))
            state[path] = (stat.st_ino, offset)
        time.sleep(0.25)
