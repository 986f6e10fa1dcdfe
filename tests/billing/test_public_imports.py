"""billing uses the logging layer as any project would: through its public names only.

Public (README, "Adding logging to your Django app"): the names `observability` exports
(its `__all__`), `observability.drf`'s `BindUserMixin`, `observability.conf`'s
`obs_settings`. The rooms inside (`observability.tracing`, `.http`, `.output`, ...) are the
library's to rearrange: an import of one from billing is a failure naming file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import observability

BILLING = Path(__file__).resolve().parents[2] / "billing"
PUBLIC = {
    "observability": set(observability.__all__),
    "observability.drf": {"BindUserMixin"},
    "observability.conf": {"obs_settings"},
}


def layer_imports(source: str) -> list[tuple[int, str, str]]:
    """(line, module, name) of every import of the layer; name "" for `import module`."""
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name, "")
                for alias in node.names
                if alias.name.partition(".")[0] == "observability"
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            module = node.module or ""
            found += [
                (node.lineno, module, alias.name)
                for alias in node.names
                if module.partition(".")[0] == "observability"
            ]
    return found


def not_public(source: str) -> list[str]:
    return [
        f"line {line}: {module}" + (f".{name}" if name else "")
        for line, module, name in layer_imports(source)
        if name not in PUBLIC.get(module, set())
    ]


def test_billing_imports_only_the_layers_public_names():
    files = sorted(BILLING.rglob("*.py"))
    assert len(files) > 10
    offenders = {
        str(path.relative_to(BILLING.parent)): found
        for path in files
        if (found := not_public(path.read_text()))
    }
    assert offenders == {}


def test_the_check_sees_a_room_however_it_is_imported():
    source = (
        "from observability import bind\n"
        "from observability.tracing.client_ip import get_client_ip\n"
        "import observability.output.writer\n"
        "from observability import tracing\n"
        "from observability.conf import obs_settings, on_reload\n"
    )
    assert not_public(source) == [
        "line 2: observability.tracing.client_ip.get_client_ip",
        "line 3: observability.output.writer",
        "line 4: observability.tracing",
        "line 5: observability.conf.on_reload",
    ]
