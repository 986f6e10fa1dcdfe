"""Mask first, then cut (THREATS.md invariant 2): every place that shortens text is known.

The syntax tree of `observability/` and `billing/` is walked for every construct that can
shorten a text: slices (`x[:N]`, `x[a:b]`, `x[-N:]`), calls of `cap`, `_cap`, `Truncator`,
`textwrap.shorten`/`wrap`/`fill`, `ljust`/`rjust`/`center`, `islice`, calls that take a
length limit (`escape(x, LIMIT)`, `redactor.text(x, LIMIT)`), `%.Ns` formats and f-string
precisions (`{x:.10}`); templates are searched for `truncatechars`, `truncatewords` and
`slice`. Each site found must be in ALLOWLIST with its reason, and each entry of ALLOWLIST
must still exist: a new cap site fails this suite until someone says why it is safe.

A site is one of:
- NOT_CLIENT: the text is not a client's (our IDs, timestamps, settings, lists, bytes
  of our own files) or is not text at all;
- MASKED: client text, masked before the cut (each such site has a driver below that
  sends card numbers at every offset around its cut and reads what was written);
- ENGINE: the masking engine's own pieces (observability/redaction.py), proved by
  tests/observability/test_redaction.py.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("observability", "billing")

CARD = "4111111111111111"


# ---------------------------------------------------------------------------- finding the sites

_CALLS = frozenset(
    {
        "cap",
        "_cap",
        "Truncator",
        "shorten",
        "wrap",
        "fill",
        "ljust",
        "rjust",
        "center",
        "truncate",
        "islice",
        "truncatechars",
        "truncatewords",
    }
)
# Calls whose second argument (or `limit=`) is a length the result is capped to.
_LIMITED_CALLS = frozenset({"escape", "escape_bar", "text", "url", "query_string"})
_PERCENT_PRECISION = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*\.\d+[sra]")
_FORMAT_PRECISION = re.compile(r"\{[^{}]*:[^{}]*\.\d+[^{}]*\}")
_TEMPLATE_CUTS = re.compile(r"\|\s*(truncatechars|truncatewords|truncatechars_html|slice)\b")


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _site_kind(node: ast.AST) -> str | None:
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        return "slice"
    if isinstance(node, ast.Call):
        name = _call_name(node)
        if name in _CALLS:
            return "call"
        if name in _LIMITED_CALLS and (
            len(node.args) >= 2 or any(keyword.arg == "limit" for keyword in node.keywords)
        ):
            return "limit"
        if name == "format" and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if (
                isinstance(target, ast.Constant)
                and isinstance(target.value, str)
                and _FORMAT_PRECISION.search(target.value)
            ):
                return "format"
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _PERCENT_PRECISION.search(node.value)
    ):
        return "percent"
    if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
        spec = ast.unparse(node.format_spec)
        if re.search(r"\.\d+", spec):
            return "precision"
    return None


def find_sites() -> Counter[str]:
    """Every cap site as `path::function::source`, counted (one function may hold twins)."""
    found: Counter[str] = Counter()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
            _walk(tree, "", relative, found)
        for path in sorted((ROOT / package).rglob("*.html")):
            relative = path.relative_to(ROOT).as_posix()
            for line in path.read_text(encoding="utf-8").splitlines():
                for match in _TEMPLATE_CUTS.finditer(line):
                    start = line.rfind("{{", 0, match.start())
                    end = line.find("}}", match.end())
                    found[f"{relative}::template::{line[start : end + 2]}"] += 1
    return found


def _walk(node: ast.AST, qualname: str, path: str, found: Counter[str]) -> None:
    for child in ast.iter_child_nodes(node):
        name = qualname
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{qualname}.{child.name}" if qualname else child.name
        kind = _site_kind(child)
        if kind is not None:
            source = " ".join(ast.unparse(child).split())
            found[f"{path}::{name or '<module>'}::{source}"] += 1
        _walk(child, name, path, found)


# ---------------------------------------------------------------------------- finding 3: the login


def _card_digits_in(text: str, card: str) -> list[str]:
    """Runs of `text` holding more than four consecutive digits of `card` (decoded or raw)."""
    from tests.observability.test_redaction import surviving

    return surviving(card, _MARKERS.sub(" ", text))


_MARKERS = re.compile(r"\.\.\.\[\d+ (?:more )?chars(?: before)?\]")


@pytest.mark.django_db
@pytest.mark.parametrize("letters", [130, 135, 140, 149])
def test_login_username_is_masked_before_it_is_cut(logs, letters):
    """A username of letters and a card number: the security file keeps at most four digits."""
    username = "a" * letters + CARD
    response = Client().post(
        "/api/v1/auth/token/",
        {"username": username, "password": "wrong-password"},
        content_type="application/json",
    )
    assert response.status_code == 401
    security = logs.text("security")
    assert "login_failed" in security
    assert "****1111" in security
    assert not _card_digits_in(logs.everything(), CARD), security
