"""Log lines written by hand, in the layer's text and JSON layouts, for the viewer's tests."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S,") + f"{when.microsecond // 1000:03d}"


def text_line(
    when: datetime, message: str, level: str = "INFO", logger: str = "billing.api", **fields: Any
) -> str:
    tokens = " ".join(f"{key}={value}" for key, value in fields.items())
    return f"{stamp(when)} {level} [{logger}] {message} | {tokens}"


def json_line(
    when: datetime, message: str, level: str = "INFO", logger: str = "billing.api", **fields: Any
) -> str:
    data = {"timestamp": when.isoformat(timespec="milliseconds"), "level": level}
    data.update(logger=logger, message=message, **fields)
    return json.dumps(data, ensure_ascii=False)


def request_lines(
    rid: str,
    start: datetime,
    *,
    duration: float = 0.02,
    status: int = 200,
    user: str = "alice",
    user_id: int | str = 1,
    ip: str = "10.0.0.1",
    method: str = "GET",
    path: str = "/api/v1/plans/",
    slow: bool = False,
    started: bool = True,
    fmt: str = "text",
    **extra: Any,
) -> list[str]:
    """The requests-file lines of one request: started, completed or failed, maybe slow."""
    make = text_line if fmt == "text" else json_line
    context = {"request_id": rid, "ip": ip, "method": method, "path": path, **extra}
    end = start + timedelta(seconds=duration)
    word = "failed" if status >= 500 else "completed"
    lines = []
    if started:
        lines.append(
            make(start, f"API Request started - Path: {path}", **context, user_id="-", username="-")
        )
    lines.append(
        make(
            end,
            f"API Request {word} - Status: {status}, Duration: {duration:.3f} seconds",
            "ERROR" if status >= 500 else "INFO",
            **context,
            user_id=user_id,
            username=user,
            status=status,
            duration=duration,
        )
    )
    if slow:
        lines.append(
            make(
                end,
                f"Slow API request detected - Duration: {duration:.3f} seconds",
                "WARNING",
                **context,
                user_id=user_id,
                username=user,
                duration=duration,
            )
        )
    return lines


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        with open(path, "ab") as handle:
            handle.write(data)
    return path
