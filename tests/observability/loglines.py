"""Log lines written by hand, in the layer's text, JSON and ECS layouts, for logtrace's tests."""

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


#: our field -> its ECS name, written out here rather than taken from observability.lines.ecs
ECS_NAMES = {
    "request_id": "http.request.id",
    "trace_id": "trace.id",
    "span_id": "span.id",
    "user_id": "user.id",
    "username": "user.name",
    "ip": "client.ip",
    "method": "http.request.method",
    "path": "url.path",
    "user_agent": "user_agent.original",
    "status": "http.response.status_code",
}


def ecs_line(
    when: datetime, message: str, level: str = "INFO", logger: str = "billing.api", **fields: Any
) -> str:
    """One object a line, nested as the ecs-logging library writes it (log.level dotted)."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    data: dict[str, Any] = {"@timestamp": stamp, "log.level": level.lower(), "message": message}
    data["ecs.version"] = "1.6.0"
    nested: dict[str, Any] = {"log": {"logger": logger}}
    for key, value in fields.items():
        if key == "duration":
            name, value = "event.duration", round(float(value) * 1_000_000_000)
        elif key == "traceback":
            name = "error.stack_trace"
        else:
            name = ECS_NAMES.get(key, f"labels.{key}")
        *parents, last = name.split(".")
        place = nested
        for parent in parents:
            place = place.setdefault(parent, {})
        place[last] = str(value) if name == "user.id" else value
    return json.dumps({**data, **nested}, ensure_ascii=False, separators=(",", ":"))


LAYOUTS = {"text": text_line, "json": json_line, "ecs": ecs_line}


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
    make = LAYOUTS[fmt]
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
