"""`logtrace`, the console script: `manage.py logtrace` without Django's set-up.

    logtrace <request-id> [--level WARNING] [--json] ...
    logtrace --user alice --since 15m

It reads the settings module (DJANGO_SETTINGS_MODULE, `--settings`, or the one the
`manage.py` of the current directory names) for `LOG_BASE_DIR` and
`OBSERVABILITY['LOG_FILES']`, and nothing else: no app is loaded, no logging is configured
(nothing is written), no database is opened. Without any settings module it reads the
environment's LOG_BASE_DIR (else `/tmp`) under the default file names (`--dir` chooses
another directory).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.core.management.base import CommandParser

#: `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")` in a manage.py
_MANAGE_SETTINGS = re.compile(
    r"""["']DJANGO_SETTINGS_MODULE["']\s*,\s*["']([A-Za-z_][A-Za-z0-9_.]*)["']"""
)


def settings_module(directory: Path) -> str | None:
    """The settings module `manage.py` in `directory` names, if it names one."""
    try:
        text = (directory / "manage.py").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = _MANAGE_SETTINGS.search(text)
    return match.group(1) if match else None


def main(argv: list[str] | None = None) -> None:
    """Run `logtrace` as `manage.py logtrace` would, with the settings read but not set up."""
    args = sys.argv[1:] if argv is None else argv
    if not os.environ.get("DJANGO_SETTINGS_MODULE") and not any(
        arg == "--settings" or arg.startswith("--settings=") for arg in args
    ):
        here = Path.cwd()
        module = settings_module(here)
        if module is not None:
            os.environ["DJANGO_SETTINGS_MODULE"] = module
            sys.path.insert(0, str(here))  # where manage.py would find it
        else:
            from django.conf import settings

            # No project here: LOG_BASE_DIR from the environment (else /tmp), default names.
            settings.configure(LOG_BASE_DIR=os.environ.get("LOG_BASE_DIR", "").strip() or "/tmp")
    from django.core.exceptions import ImproperlyConfigured

    from observability.management.commands.logtrace import Command
    from observability.masking.escaping import escape

    class Console(Command):
        def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
            parser = super().create_parser(prog_name, subcommand, **kwargs)
            parser.prog = "logtrace"  # not "logtrace logtrace", as manage.py would name it
            return parser

    try:
        Console().run_from_argv(["logtrace", "logtrace", *args])
    except (ImproperlyConfigured, ImportError) as exc:  # the settings module would not load
        sys.stderr.write(f"logtrace: the settings could not be read: {escape(str(exc))}\n")
        sys.exit(2)
    except BrokenPipeError:  # `logtrace ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


if __name__ == "__main__":
    main()
