"""python manage.py logtrace: one request's story, or the requests that match, from every file.

Everything it prints comes from the logs or the command line, so every output (the listing,
a story, `--json`, `--follow`, its errors) escapes control and bidi characters with
`observability.masking.escaping.escape`: a terminal never gets a raw ESC, BEL, CR or U+202E, and
neither does a script that decodes the JSON (`jq -r`).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from observability.conf import obs_settings
from observability.logtrace import (
    LEVELS,
    Filters,
    Record,
    Story,
    Summary,
    follow_files,
    list_requests,
    parse_when,
    story,
    waterfall,
)
from observability.logtrace.hosts import is_root
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


class Command(BaseCommand):
    # It reads files only: no system checks, so the `logtrace` console script runs it
    # without Django's set-up (observability.management.logtrace_cli).
    requires_system_checks: list[str] = []
    help = (
        "Follow one request (by its X-Request-ID) through every log file and rotated backup, "
        "in time order; or, without an ID, list the requests matching the filters."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("request_id", nargs="?", help="The request ID to trace.")
        parser.add_argument("--dir", help="Log directory (default: settings.LOG_BASE_DIR).")
        parser.add_argument(
            "--root",
            help="A central root: one folder per host, each with its files (default: "
            "OBSERVABILITY['LOG_ROOT'] when set).",
        )
        parser.add_argument("--host", help="In a central root: only this host's requests.")
        parser.add_argument(
            "--task", help="Start from a background task: its records (every attempt)."
        )
        parser.add_argument("--user", help="Only requests of this user ID or username.")
        parser.add_argument("--ip", help="Only requests from this client IP.")
        parser.add_argument("--path", help="Only requests whose path starts with this prefix.")
        parser.add_argument(
            "--route", help="Only requests of this URL pattern (as lines name it: api/v1/plans/)."
        )
        parser.add_argument("--trace", help="Only requests of this trace ID (32 hex digits).")
        parser.add_argument(
            "--status", help="Only requests that ended with this status class or code (5xx, 404)."
        )
        parser.add_argument(
            "--since", help="Not before: ISO time (UTC) or an age like 15m, 2h, 1d."
        )
        parser.add_argument("--until", help="Not after: ISO time (UTC) or an age like 5m.")
        parser.add_argument("--slow", action="store_true", help="Only slow requests.")
        parser.add_argument("--errors", action="store_true", help="Only failed (5xx) requests.")
        parser.add_argument(
            "--level",
            type=str.upper,
            choices=list(LEVELS),
            help="Only records (or requests with a record) at this level or above.",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=50,
            help="Listing mode: the newest this many matching requests (default 50).",
        )
        parser.add_argument("--json", action="store_true", help="Machine-readable JSON output.")
        parser.add_argument(
            "--follow",
            action="store_true",
            help="Keep printing new matching records as they are written.",
        )

    def _usage(self, message: str) -> CommandError:
        return CommandError(message, returncode=2)

    def handle(self, *args: Any, **options: Any) -> None:
        directory = self._directory(options)
        if options["limit"] < 1:
            msg = f"--limit must be >= 1, got {options['limit']}"
            raise self._usage(msg)
        times: dict[str, datetime | None] = {"since": None, "until": None}
        for key in times:
            if options[key]:
                try:
                    times[key] = parse_when(options[key])
                except (ValueError, OverflowError):
                    msg = (
                        f"--{key}: expected an ISO time or an age like 15m, "
                        f"got {escape(repr(options[key]))}"
                    )
                    raise self._usage(msg) from None
        try:
            filters = Filters(
                user=options["user"],
                ip=options["ip"],
                path=options["path"],
                route=options["route"],
                trace=options["trace"],
                since=times["since"],
                until=times["until"],
                status=options["status"],
                slow=options["slow"],
                errors=options["errors"],
                level=LEVELS.get(options["level"] or "", 0),
                host=options["host"],
            )
        except ValueError as exc:  # the one value Filters checks itself: --status
            msg = f"--{escape(str(exc))}"
            raise self._usage(msg) from None
        self.colour = self.stdout.isatty() and not options["no_color"] and not options["json"]
        rid = options["request_id"]
        if options["task"]:
            found = self._task(directory, options["task"], options["json"])
            if not found:
                shown = escape(options["task"])
                self.stderr.write(f"logtrace: nothing in {escape(str(directory))} of task {shown}")
                sys.exit(1)
            return
        if rid:
            found = self._trace(directory, rid, filters, options["json"])
        else:
            found = self._list(directory, filters, options["limit"], options["json"])
        if options["follow"]:
            if is_root(directory):
                msg = "--follow reads one host's directory: give --dir <root>/<host>"
                raise self._usage(msg)
            self._follow(directory, rid, filters, options["json"])
        if not found:
            what = f"request {escape(rid)}" if rid else "the filters"
            self.stderr.write(f"logtrace: nothing in {escape(str(directory))} matches {what}")
            sys.exit(1)

    def _directory(self, options: dict[str, Any]) -> Path:
        """--dir, else --root, else OBSERVABILITY['LOG_ROOT'], else settings.LOG_BASE_DIR."""
        if options["dir"] and options["root"]:
            msg = "--dir and --root: give one"
            raise self._usage(msg)
        chosen = options["dir"] or options["root"] or obs_settings.LOG_ROOT
        option = "--root" if options["root"] else "--dir"
        if not (options["dir"] or options["root"]) and obs_settings.LOG_ROOT:
            option = "OBSERVABILITY['LOG_ROOT']"
        directory = Path(chosen or getattr(settings, "LOG_BASE_DIR", "/tmp"))
        if not directory.is_dir():
            msg = f"{option}: {escape(str(directory))} is not a directory"
            raise self._usage(msg)
        if options["root"] and not is_root(directory):
            msg = f"--root: {escape(str(directory))} holds no host folder with log files"
            raise self._usage(msg)
        return directory

    def _trace(self, directory: Path, rid: str, filters: Filters, as_json: bool) -> bool:
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
        self._print_warnings(rid, found)
        for number, (summary, group) in enumerate(requests, 1):
            if len(requests) > 1:
                self.stdout.write(f"--- request {number} of {len(requests)}")
            self._print_summary(rid, summary)
            self._print_tasks(group)
            self._print_waterfall(summary, group)
            for record in group:
                self._print_record(record)
        return True

    def _task(self, directory: Path, task_id: str, as_json: bool) -> bool:
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
            self._print_record(record)
        return True

    def _print_tasks(self, group: list[Record]) -> None:
        for task in summarise_tasks(group):
            self.stdout.write(f"  {escape(task.line())}")

    def _print_waterfall(self, summary: Summary, group: list[Record]) -> None:
        """Its spans, queries and calls as bars, and where the time went (when it has any)."""
        found = waterfall.rows(group, summary.first)
        if not found:
            return
        total_ms = (summary.seconds or 0.0) * 1000
        split = waterfall.where_the_time_went(group, total_ms, found)
        for line in waterfall.as_text(found, split):
            self.stdout.write(escape(line))
        self.stdout.write("")

    def _print_warnings(self, rid: str, found: Story) -> None:
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

    def _print_summary(self, rid: str, summary: Summary) -> None:
        counts = ", ".join(f"{escape(name)}: {n}" for name, n in summary.counts.items())
        flags = [flag for flag, on in (("SLOW", summary.slow), ("FAILED", summary.failed)) if on]
        e = escape
        self.stdout.write(
            f"request {e(rid)}\n"
            f"  {e(summary.method)} {e(summary.path)}  status={e(summary.status)} "
            f"duration={e(summary.duration)}s {' '.join(flags)}\n"
            f"  user={e(summary.username)} (ID {e(summary.user_id)})  ip={e(summary.ip)}\n"
            f"  {summary.first:%Y-%m-%d %H:%M:%S.%f}"[:-3]
            + f" -> {_time(summary.last)} UTC  records: {counts}\n"
            + (
                ""
                if summary.lifecycle
                else f"  no lifecycle lines (sampled out, or never written): its records carry "
                f"span_id={e(summary.span_id)}\n"
            )
        )
        if summary.host != "-":  # read from a central root: the host that served it
            self.stdout.write(f"  served by host {e(summary.host)}")

    def _print_record(self, record: Record) -> None:
        """The line as written (escapes stay escapes); a traceback unfolded below it."""
        json_line = record.is_json
        if json_line:
            text = (
                f"[{escape(record.file):8}] {record.time:%Y-%m-%d %H:%M:%S,%f}"[:-3]
                + f" {escape(record.level)} [{escape(record.logger)}] {escape(record.message)}"
            )
        tb = record.traceback
        if not json_line:
            head = record.raw[: len(record.raw) - len(tb) - 3] if tb else record.raw
            text = f"[{escape(record.file):8}] {escape(head)}"
        if record.host:
            text = f"[{escape(record.host)}] {text}"
        if self.colour:
            text = f"{COLOURS.get(record.level, '')}{text}{RESET}"
        self.stdout.write(text)
        if tb:
            for line in unescape_traceback(tb).splitlines():
                self.stdout.write(f"{'':11}| {escape(line)}")

    def _list(self, directory: Path, filters: Filters, limit: int, as_json: bool) -> bool:
        """The newest `limit` matches, printed oldest first (the newest last, by the prompt)."""
        summaries = list_requests(directory, filters, limit)
        if as_json:
            listing = {"requests": [s.as_dict() for s in summaries]}
            self.stdout.write(json.dumps(clean(listing), indent=2))
        else:
            for summary in summaries:
                self.stdout.write(summary.line())
        return bool(summaries)

    def _follow(self, directory: Path, rid: str | None, filters: Filters, as_json: bool) -> None:
        try:
            for record in follow_files(directory):
                if rid and record.request_id != rid:
                    continue
                if not filters.record_matches(record):
                    continue
                if as_json:
                    self.stdout.write(json.dumps(clean(record.as_dict())))
                else:
                    self._print_record(record)
                self.stdout.flush()
        except KeyboardInterrupt:
            return
