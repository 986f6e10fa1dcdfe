"""Every dotted path the README names (settings, URL includes, imports) keeps importing.

A user copies `observability.middleware.RequestLoggingMiddleware` or
`include("observability.viewer.urls")` into their project: moving a module inside the
library must never break what they copied.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
DOTTED = sorted(set(re.findall(r"(?<![\w./])observability(?:\.[A-Za-z_]\w*)+(?![\w*])", README)))


def resolve(path: str) -> object:
    """The module, or the attribute of the longest importable module prefix."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            target = getattr(target, name)
        return target
    raise ModuleNotFoundError(path)


def test_the_readme_names_the_paths_users_copy():
    for expected in (
        "observability.middleware.RequestLoggingMiddleware",
        "observability.viewer.urls",
        "observability.metrics_urls",
        "observability.filters.FloodFilter",
    ):
        assert expected in DOTTED


@pytest.mark.parametrize("path", DOTTED)
def test_every_dotted_path_in_the_readme_imports(path):
    assert resolve(path) is not None
