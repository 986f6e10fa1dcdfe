"""billing's records name the module that wrote them (the seed's `getLogger(__name__)`).

Exceptions are the seed's own names, kept where the seed puts them: `common.jwt_auth` in
the JWT authentication. The layer's loggers (`billing.api`, `billing.security`,
`billing.events`, `billing.performance`) are the layer's, named by its settings.
"""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import pytest

from billing import services

BILLING = Path(__file__).resolve().parents[2] / "billing"
SEED_NAMES = {"billing/authentication.py": "common.jwt_auth"}


def logger_names(source: str) -> list[str]:
    """The argument of each `logging.getLogger(...)` call: a string, or "__name__"."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "getLogger"
            and node.args
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Name):
                names.append(arg.id)
            elif isinstance(arg, ast.Constant):
                names.append(str(arg.value))
            else:
                names.append(ast.unparse(arg))
    return names


def test_each_billing_module_logs_under_its_own_name():
    wrong = {}
    for path in sorted(BILLING.rglob("*.py")):
        relative = path.relative_to(BILLING.parent).as_posix()
        module = relative.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        allowed = {"__name__", module, SEED_NAMES.get(relative)}
        names = [name for name in logger_names(path.read_text()) if name not in allowed]
        if names:
            wrong[relative] = names
    assert wrong == {}


@pytest.mark.django_db
def test_a_services_record_names_billing_services(logs):
    services.plan_create(
        name="Gold", code="gold", amount=Decimal("5.00"), currency="USD", interval="month"
    )
    [line] = [line for line in logs.lines("general") if "Plan gold created" in line]
    assert " INFO [billing.services] Plan gold created | " in line
