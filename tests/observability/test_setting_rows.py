"""The README's table of OBSERVABILITY keys is the rows' own: every key once, each default as declared."""

from __future__ import annotations

import re
from pathlib import Path

from observability.conf_rows import ROWS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def table() -> dict[str, str]:
    """Each key of the README's OBSERVABILITY table -> the text of its default's cell."""
    section = README.split("### `OBSERVABILITY` flags", 1)[1].split("\n## ", 1)[0]
    cells: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        keys_cell, default_cell = line.split(" | ")[:2]
        keys = re.findall(r"`([A-Z0-9_]+)`", keys_cell)
        defaults = re.findall(r"`([^`]*)`", default_cell)
        for index, key in enumerate(keys):
            assert key not in cells, f"{key} twice in the README's table"
            if len(defaults) == len(keys):
                cells[key] = defaults[index]
            else:  # one default for the row's keys, or a default described in words
                cells[key] = defaults[0] if len(defaults) == 1 else default_cell
    return cells


def shown(name: str, value: object) -> str | None:
    """How the README writes a simple default (None for those it describes in words)."""
    if name.endswith("_MODE") and isinstance(value, int):
        return oct(value)
    if isinstance(value, str):
        return f'"{value}"'
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, tuple) and len(value) <= 2 and all(isinstance(v, str) for v in value):
        return "(" + ", ".join(f'"{v}"' for v in value) + ("," if len(value) == 1 else "") + ")"
    return None


def test_every_row_is_in_the_readme_and_nothing_else():
    assert set(table()) == {row.name for row in ROWS}


def test_each_simple_default_is_the_rows_own():
    cells = table()
    wrong = {
        row.name: (cells[row.name], shown(row.name, row.default))
        for row in ROWS
        if shown(row.name, row.default) is not None
        and cells[row.name] != shown(row.name, row.default)
    }
    assert not wrong


def test_the_librarys_defaults_do_not_speak_billing():
    """Logger and file names are the host project's to choose: the library's defaults are
    neutral, and this project sets the seed's (config/logs.py)."""
    from django.conf import settings

    billing = [row.name for row in ROWS if "billing" in repr(row.default).lower()]
    assert billing == []
    assert settings.OBSERVABILITY["APP_LOGGER"] == "billing"
    assert settings.OBSERVABILITY["LOG_FILES"]["requests"] == "billing_api_requests.log"
