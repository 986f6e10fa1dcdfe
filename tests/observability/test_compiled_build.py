"""Which build runs: `make compiled` (.venv-compiled/src) imports every module setup.py
lists as a mypyc extension; anywhere else each is the .py beside it, never a stale .so."""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def compiled_modules() -> list[str]:
    """setup.py's COMPILED, as module names (read, not run: running it would build)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "COMPILED" for target in node.targets
        ):
            paths = ast.literal_eval(node.value)
            return [path.removesuffix(".py").replace("/", ".") for path in paths]
    raise AssertionError("setup.py has no COMPILED list")


def test_each_listed_module_is_the_build_this_venv_expects():
    expect_compiled = os.environ.get("OBSERVABILITY_EXPECT_COMPILED") == "1"
    modules = compiled_modules()
    assert modules, "setup.py lists no module"
    wrong = {}
    for name in modules:
        module = importlib.import_module(name)
        path = Path(module.__file__ or "")
        assert path.is_relative_to(ROOT), f"{name} imported from {path}, not from {ROOT}"
        if (path.suffix == ".so") is not expect_compiled:
            wrong[name] = path.name
    build = "compiled (.so)" if expect_compiled else "pure Python (.py)"
    assert not wrong, f"expected the {build} build of every listed module; got {wrong}"
