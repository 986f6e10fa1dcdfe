"""The README's "Security of the logs" names the tests that prove each invariant: they exist.

A citation is a pytest node ID without its parameters, in backticks:
`tests/<path>.py::<test>` or `tests/<path>.py::<TestClass>[::<test>]`. Each cited file is
parsed with `ast` (nothing is imported, so the end-to-end files count too): a cited test
must be a module-level `test_*` function or `Test*` class of that file, or a `test_*` method
of the cited class, so that pytest collects it. Renaming or deleting a cited test without
updating the README fails here, and so does a citation this check cannot read.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Security of the logs"
INVARIANTS = range(1, 10)  # THREATS.md's nine invariants, one heading each

# `tests/observability/test_flood.py::test_name`, `...::TestClass::test_name`, `...[param]`
CITATION = re.compile(r"`(tests/[\w/]+\.py)((?:::\w+)+)(?:\[[^\]`]*\])?`")
# Any node-ID tail, cited in full or not: each must belong to a citation above.
NODE_TAIL = re.compile(r"::(?:test_|Test)\w*")
INVARIANT_HEADING = re.compile(r"^### (\d)\. ", re.MULTILINE)


def security_section() -> str:
    """The README's "Security of the logs" section, up to the next `## ` heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n{SECTION}\n") + 1
    end = text.find("\n## ", start + len(SECTION))
    return text[start:] if end == -1 else text[start:end]


def citations(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """(file, names) of every test cited in `text`, in order."""
    return [(path, tuple(names.split("::")[1:])) for path, names in CITATION.findall(text)]


@cache
def collectable(path: str) -> dict[str, set[str] | None]:
    """The tests pytest would collect in `path`: functions (None) and classes (their methods)."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)
    found: dict[str, set[str] | None] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name.startswith("test"):
                found[node.name] = None
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            found[node.name] = {
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and item.name.startswith("test")
            }
    return found


def missing(path: str, names: tuple[str, ...]) -> str | None:
    """Why `path::names` is no test pytest collects, or None when it is one."""
    if not (ROOT / path).is_file():
        return f"{path} does not exist"
    tests = collectable(path)
    first, rest = names[0], names[1:]
    if first not in tests:
        return f"{path} defines no test or test class named {first}"
    methods = tests[first]
    if not rest:
        return None
    if methods is None or len(rest) > 1:
        return f"{first} in {path} is not a class holding {'::'.join(rest)}"
    if rest[0] not in methods:
        return f"class {first} in {path} has no test named {rest[0]}"
    return None


def node_id(path: str, names: tuple[str, ...]) -> str:
    return "::".join((path, *names))


CITED = citations(security_section())


def test_the_section_cites_tests():
    assert len(CITED) >= 100, f"only {len(CITED)} citations found in {SECTION!r}"


@pytest.mark.parametrize(
    ("path", "names"), sorted(set(CITED)), ids=[node_id(*c) for c in sorted(set(CITED))]
)
def test_every_cited_test_exists(path, names):
    problem = missing(path, names)
    assert problem is None, (
        f"README.md, {SECTION!r}, cites {node_id(path, names)}: {problem}. "
        "Cite the test's new name (or remove the citation) in the README."
    )


def test_every_node_id_in_the_section_is_a_whole_citation():
    """`::test_x` without its file (or outside backticks) could not be checked."""
    text = security_section()
    covered = [match.span() for match in CITATION.finditer(text)]
    stray = [
        text[max(match.start() - 40, 0) : match.end()].replace("\n", " ")
        for match in NODE_TAIL.finditer(text)
        if not any(start <= match.start() < end for start, end in covered)
    ]
    assert not stray, f"write these as `tests/<file>.py::<name>`: {stray}"


def test_each_invariant_has_its_entry_and_its_tests():
    text = security_section()
    headings = list(INVARIANT_HEADING.finditer(text))
    assert [int(h.group(1)) for h in headings] == list(INVARIANTS)
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        end = following.start() if following else text.find("\n### ", heading.end())
        entry = text[heading.start() : end if end != -1 else len(text)]
        for part in ("**How.**", "**Limits.**", "**Tests.**"):
            assert part in entry, f"invariant {heading.group(1)} has no {part}"
        assert citations(entry), f"invariant {heading.group(1)} cites no test"


def test_the_check_finds_a_renamed_test():
    """The checks above would catch a rename (a positive control on this very file)."""
    path = "tests/test_readme.py"
    assert missing(path, ("test_every_cited_test_exists",)) is None
    assert missing(path, ("test_every_cited_test_was_renamed",)) is not None
    assert missing("tests/no_such_file.py", ("test_x",)) is not None
    assert missing("tests/observability/test_client_ip.py", ("TestMalformed",)) is None
    assert (
        missing("tests/observability/test_client_ip.py", ("TestMalformed", "test_no")) is not None
    )
    text = "`tests/a.py::test_b` and `tests/a.py::TestC::test_d[x|y]`"
    assert citations(text) == [("tests/a.py", ("test_b",)), ("tests/a.py", ("TestC", "test_d"))]
