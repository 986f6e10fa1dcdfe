"""What `logtrace` prints: a request ID's story, a task's records, the listing, new records.

Everything it prints comes from the logs or the command line, so every output (the listing,
a story, `--json`, `--follow`) escapes control and bidi characters with
`observability.masking.escaping.escape`: a terminal never gets a raw ESC, BEL, CR or U+202E, and
neither does a script that decodes the JSON (`jq -r`).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import OutputWrapper

from observability.logtrace import (
    Filters,
    Record,
    Story,
    Summary,
    follow_files,
    list_requests,
    story,
    waterfall,
)
from observability.logtrace.tasks import summarise_tasks, task_records
from observability.masking.escaping import escape, unescape_traceback

COLOURS = {
    "DEBUG": "\033[2m",
    "INFO": "",
    "WARNING": "\033[33m",
    "ERROR": "\033[31m",
    "CRITICAL": "\033[1;31m",
}
RESET = "\033[0m"


def clean(value: Any) -> Any:
    """A JSON-able value with every string in it (keys too) escaped."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {clean(key): clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean(item) for item in value]
    return value


def _time(when: datetime) -> str:
    return f"{when:%H:%M:%S.%f}"[:-3]


class Printer:
    """Reads what `logtrace` was asked for and writes it to the command's stdout."""

    def __init__(self, stdout: OutputWrapper, *, colour: bool) -> None:
        self.stdout = stdout
        self.colour = colour

    def trace(self, directory: Path, rid: str, filters: Filters, as_json: bool) -> bool:
        """One request ID's story: each request that used it, its tasks, spans and records."""
        found = story(directory, rid, filters, limit=None)
        if found is None:
            return False
        requests = found.requests
        if as_json:
            data = {
                "summary": found.summary.as_dict(),
                "shared_by": len(requests),
                "reused": bool(found.reused),
                "reused_events": [r.as_dict() for r in found.reused],
                "requests": [
                    {"summary": summary.as_dict(), "records": [r.as_dict() for r in group]}
                    for summary, group in requests
                ],
                "records": [r.as_dict() for r in found.records],
            }
            self.stdout.write(json.dumps(clean(data), indent=2))
            return True
        self._warnings(rid, found)
        for number, (summary, group) in enumerate(requests, 1):
            if len(requests) > 1:
                self.stdout.write(f"--- request {number} of {len(requests)}")
            self._summary(rid, summary)
            self._tasks(group)
            self._waterfall(summary, group)
            for record in group:
                self._record(record)
        return True

    def task(self, directory: Path, task_id: str, as_json: bool) -> bool:
        """One task's records, headed by its name, outcome and the request that set it off."""
        records = task_records(directory, task_id)
        if not records:
            return False
        summary = summarise_tasks(records)[0]
        request_id = str(records[0].fields.get("request_id", "-"))
        if as_json:
            data = {
                "task_id": task_id,
                "task_name": summary.name,
                "outcome": summary.outcome,
                "attempts": summary.attempts,
                "request_id": request_id,
                "records": [r.as_dict() for r in records],
            }
            self.stdout.write(json.dumps(clean(data), indent=2))
            return True
        self.stdout.write(escape(summary.line()))
        self.stdout.write(
            f"  set off by request {escape(request_id)} (logtrace {escape(request_id)})\n"
        )
        for record in records:
            self._record(record)
        return True

    def listing(self, directory: Path, filters: Filters, limit: int, as_json: bool) -> bool:
        """The newest `limit` matches, printed oldest first (the newest last, by the prompt)."""
        summaries = list_requests(directory, filters, limit)
        if as_json:
            listing = {"requests": [s.as_dict() for s in summaries]}
            self.stdout.write(json.dumps(clean(listing), indent=2))
        else:
            for summary in summaries:
                self.stdout.write(summary.line())
        return bool(summaries)

    def follow(self, directory: Path, rid: str | None, filters: Filters, as_json: bool) -> None:
        """New matching records as they are written, until interrupted."""
        try:
            for record in follow_files(directory):
                if rid and record.request_id != rid:
                    continue
                if not filters.record_matches(record):
                    continue
                if as_json:
                    self.stdout.write(json.dumps(clean(record.as_dict())))
                else:
                    self._record(record)
                self.stdout.flush()
        except KeyboardInterrupt:
            return

    def _warnings(self, rid: str, found: Story) -> None:
        """What the header must say before any request: the ID was shared, or seen reused."""
        shown = escape(rid)
        count = len(found.requests)
        if count > 1:
            self.stdout.write(
                f"request {shown}: shared by {count} requests (a client reused or forged "
                "this ID); each one's records follow its own header\n"
            )
        for event in found.reused:
            kind = str(event.fields.get("event_type"))
            what = "ID" if kind == "request_id_reused" else "traceparent"
            self.stdout.write(
                f"request {shown}: the server saw this {what} sent again: {kind} at "
                f"{_time(event.time)} UTC from ip={escape(str(event.fields.get('ip', '-')))}\n"
            )

    def _summary(self, rid: str, summary: Summary) -> None:
        counts = ", ".join(f"{escape(name)}: {n}" for name, n in summary.counts.items())
        flags = [flag for flag, on in (("SLOW", summary.slow), ("FAILED", summary.failed)) if on]
        e = escape
        self.stdout.write(
            f"request {e(rid)}\n"
            f"  {e(summary.method)} {e(summary.path)}  status={e(summary.status)} "
            f"duration={e(summary.duration)}s{''.join(f' {flag}' for flag in flags)}\n"
            f"  user={e(summary.username)} (ID {e(summary.user_id)})  ip={e(summary.ip)}\n"
            f"  {summary.first:%Y-%m-%d} {_time(summary.first)} -> {_time(summary.last)} UTC"
            f"  records: {counts}\n"
            + (
                ""
                if summary.lifecycle
                else f"  no lifecycle lines (sampled out, or never written): its records carry "
                f"span_id={e(summary.span_id)}\n"
            )
        )
        if summary.host != "-":  # read from a central root: the host that served it
            self.stdout.write(f"  served by host {e(summary.host)}")

    def _tasks(self, group: list[Record]) -> None:
        for task in summarise_tasks(group):
            self.stdout.write(f"  {escape(task.line())}")

    def _waterfall(self, summary: Summary, group: list[Record]) -> None:
        """Its spans, queries, calls and tasks as bars, and where the time went (if any)."""
        found = waterfall.rows(group, summary.first)
        if not found:
            return
        total_ms = (summary.seconds or 0.0) * 1000
        split = waterfall.where_the_time_went(group, total_ms, found)
        for line in waterfall.as_text(found, split):
            self.stdout.write(escape(line))
        self.stdout.write("")

    def _record(self, record: Record) -> None:
        """The line as written (escapes stay escapes); a traceback unfolded below it."""
        json_line = record.is_json
        if json_line:
            text = (
                f"[{escape(record.files):8}] {record.time:%Y-%m-%d %H:%M:%S,%f}"[:-3]
                + f" {escape(record.level)} [{escape(record.logger)}] {escape(record.message)}"
            )
        tb = record.traceback
        if not json_line:
            head = record.raw[: len(record.raw) - len(tb) - 3] if tb else record.raw
            text = f"[{escape(record.files):8}] {escape(head)}"
        if record.host:
            text = f"[{escape(record.host)}] {text}"
        if self.colour:
            text = f"{COLOURS.get(record.level, '')}{text}{RESET}"
        self.stdout.write(text)
        if tb:
            for line in unescape_traceback(tb).splitlines():
                self.stdout.write(f"{'':11}| {escape(line)}")
