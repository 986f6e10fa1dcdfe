"""python manage.py logtrace: one request's story, or the requests that match, from every file.

What it prints is `observability.management.logtrace_output`'s; its errors, like every output,
escape control and bidi characters (`observability.masking.escaping.escape`): they repeat what
the command line gave.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from observability.conf import obs_settings
from observability.logtrace import LEVELS, Filters, parse_when
from observability.logtrace.hosts import is_root
from observability.management.logtrace_output import Printer
from observability.masking.escaping import escape


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
        colour = self.stdout.isatty() and not options["no_color"] and not options["json"]
        printer = Printer(self.stdout, colour=colour)
        rid = options["request_id"]
        if options["task"]:
            found = printer.task(directory, options["task"], options["json"])
            if not found:
                shown = escape(options["task"])
                self.stderr.write(f"logtrace: nothing in {escape(str(directory))} of task {shown}")
                sys.exit(1)
            return
        if rid:
            found = printer.trace(directory, rid, filters, options["json"])
        else:
            found = printer.listing(directory, filters, options["limit"], options["json"])
        if options["follow"]:
            if is_root(directory):
                msg = "--follow reads one host's directory: give --dir <root>/<host>"
                raise self._usage(msg)
            printer.follow(directory, rid, filters, options["json"])
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
