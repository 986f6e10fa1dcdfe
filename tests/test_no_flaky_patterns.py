"""The suite forbids the patterns that flake on a loaded machine, read from its syntax trees.

- A fixed sleep (`time.sleep`, `asyncio.sleep`): a test waits for the exact thing it expects
  through tests/polling.py, never for a time that a busy machine can make too short.
- A test's OBSERVABILITY without the never-reached slow threshold: a dict assigned to
  `settings.OBSERVABILITY` starts with `**NOT_SLOW` (tests/conftest.py) or the settings it
  extends, else a request that a loaded machine makes last over a second adds a line.
- A wall-clock assertion: an `assert` comparing a value of `time.time()`, `time.monotonic()`
  or `time.perf_counter()` (or a name computed from one) with anything: a loaded machine
  crosses any such bound. Slowness is tested with a frozen clock (freezegun) or a view that
  waits on an event the test sets.

Only the polling helper sleeps; a few server-side views pause on purpose (ALLOWED, each with
its reason), and none of their tests asserts on a duration.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
POLLING = "tests/polling.py"
SLEEPS = {("time", "sleep"), ("asyncio", "sleep")}
CLOCKS = {
    ("time", name)
    for name in (
        "time",
        "time_ns",
        "monotonic",
        "monotonic_ns",
        "perf_counter",
        "perf_counter_ns",
    )
}
#: (file, function) -> why a sleep there is not a wait in a test.
ALLOWED = {
    ("tests/urls.py", "async_view"): (
        "`?gap=` yields to the event loop between two records, so that concurrent requests "
        "interleave; no assertion reads the time"
    ),
    ("tests/e2e/probe_tasks.py", "hold"): (
        "a worker's task that holds (bounded) until the test writes its release file, so a "
        "SIGTERM lands mid-task; no assertion reads the time"
    ),
    ("tests/e2e/urls.py", "wait_for_the_ledger"): (
        "`?s=` is slow work a real server does (a timeline's gap, a slow-request counter): it "
        "only has to last at least that long, which load never shortens"
    ),
}


class Finder(ast.NodeVisitor):
    """Sleeps and wall-clock assertions in one module."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.modules: dict[str, str] = {}  # local name -> module (import time as t)
        self.functions: dict[str, tuple[str, str]] = {}  # from time import sleep as nap
        self.scopes: list[str] = []
        self.clocked: list[set[str]] = [set()]  # names holding a clock's value, per scope
        self.problems: list[str] = []

    # imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.modules[alias.asname or alias.name] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.functions[alias.asname or alias.name] = (node.module or "", alias.name)

    # what a call names
    def called(self, node: ast.Call) -> tuple[str, str] | None:
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module = self.modules.get(func.value.id)
            return (module, func.attr) if module else None
        if isinstance(func, ast.Name):
            return self.functions.get(func.id)
        return None

    def reads_clock(self, node: ast.AST) -> bool:
        """A clock's reading, a name holding one, or arithmetic on them (a duration, a
        deadline); what a call makes of one (an ID, a row) is not a time any more."""
        if isinstance(node, ast.Call):
            return self.called(node) in CLOCKS
        if isinstance(node, ast.Name):
            return any(node.id in names for names in self.clocked)
        if isinstance(node, ast.BinOp):
            return self.reads_clock(node.left) or self.reads_clock(node.right)
        if isinstance(node, ast.UnaryOp):
            return self.reads_clock(node.operand)
        return False

    # scopes
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scopes.append(node.name)
        self.clocked.append(set())
        self.generic_visit(node)
        self.clocked.pop()
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(self.is_observability(target) for target in node.targets) and not self.not_slow(
            node.value
        ):
            self.problems.append(
                f"{self.path}:{node.lineno} OBSERVABILITY without **NOT_SLOW first: a loaded"
                " machine makes a request slow (set a slow test's threshold with slow_threshold)"
            )
        if self.reads_clock(node.value):
            for target in node.targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        self.clocked[-1].add(sub.id)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        value, target = node.value, node.target
        if value is not None and isinstance(target, ast.Name) and self.reads_clock(value):
            self.clocked[-1].add(target.id)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name) and self.reads_clock(node.value):
            self.clocked[-1].add(node.target.id)
        self.generic_visit(node)

    @staticmethod
    def is_observability(target: ast.expr) -> bool:
        return isinstance(target, ast.Attribute) and target.attr == "OBSERVABILITY"

    def not_slow(self, value: ast.expr) -> bool:
        """A dict starting with **NOT_SLOW or **<settings>.OBSERVABILITY, or a saved value."""
        if isinstance(value, ast.Name):
            return True
        if not isinstance(value, ast.Dict) or not value.keys or value.keys[0] is not None:
            return False
        first = value.values[0]
        return (isinstance(first, ast.Name) and first.id == "NOT_SLOW") or self.is_observability(
            first
        )

    # the patterns
    def visit_Call(self, node: ast.Call) -> None:
        target = self.called(node)
        if target in SLEEPS and not self.allowed():
            where = ".".join(self.scopes) or "<module>"
            self.problems.append(
                f"{self.path}:{node.lineno} {'.'.join(target)}() in {where}: a fixed sleep;"
                " wait for what you expect with tests.polling.wait_for"
            )
        self.generic_visit(node)

    def visit_Assert(self, node: ast.Assert) -> None:
        for sub in ast.walk(node.test):
            if isinstance(sub, ast.Compare) and any(
                self.reads_clock(side) for side in (sub.left, *sub.comparators)
            ):
                self.problems.append(
                    f"{self.path}:{node.lineno} assert compares the wall clock"
                    f" ({ast.unparse(sub)}): a loaded machine crosses any such bound;"
                    " freeze the clock or wait on an event"
                )
                break
        self.generic_visit(node)

    def allowed(self) -> bool:
        if self.path == POLLING:
            return True
        return any((self.path, scope) in ALLOWED for scope in self.scopes)


def problems_in(source: str, path: str = "tests/test_example.py") -> list[str]:
    finder = Finder(path)
    finder.visit(ast.parse(source))
    return finder.problems


def suite_files() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def test_no_test_sleeps_or_asserts_on_the_wall_clock():
    found = [
        problem
        for path in suite_files()
        for problem in problems_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert not found, "\n".join(found)


def test_every_allowed_sleep_is_still_there():
    """An entry whose view no longer sleeps goes from ALLOWED (the list stays exact)."""
    for path, function in ALLOWED:
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        bodies = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function
        ]
        assert bodies, (path, function)
        assert "sleep(" in ast.unparse(bodies[0]), (path, function)


@pytest.mark.parametrize(
    "snippet",
    [
        "import time\ndef test_x():\n    time.sleep(0.1)\n",
        "import asyncio\nasync def test_x():\n    await asyncio.sleep(1)\n",
        "from time import sleep\ndef test_x():\n    sleep(0.5)\n",
        "import time as t\ndef wait():\n    t.sleep(0.5)\n",
        "from asyncio import sleep as nap\nasync def f():\n    await nap(0)\n",
        "import time\ntime.sleep(1)\n",
    ],
)
def test_a_planted_sleep_is_found(snippet):
    (problem,) = problems_in(snippet)
    assert "a fixed sleep" in problem and problem.startswith("tests/test_example.py:")


@pytest.mark.parametrize(
    "snippet",
    [
        # a duration measured around a call, compared with a number
        "import time\ndef test_x():\n    started = time.monotonic()\n    go()\n"
        "    elapsed = time.monotonic() - started\n    assert elapsed < 1.0\n",
        "import time\ndef test_x():\n    t0 = time.perf_counter()\n    go()\n"
        "    assert time.perf_counter() - t0 <= 0.25, 'too slow'\n",
        "from time import time\ndef test_x():\n    start = time()\n    go()\n"
        "    assert 2 > time() - start\n",
        "import time\ndef test_x():\n    deadline = time.monotonic() + 5\n"
        "    assert time.monotonic() < deadline\n",
        "import time\ndef test_x():\n    took: float = time.time_ns()\n    assert took and ok()\n"
        "    assert not (took > 10)\n",
    ],
)
def test_a_planted_wall_clock_assertion_is_found(snippet):
    found = problems_in(snippet)
    assert len(found) == 1, found
    assert "assert compares the wall clock" in found[0]


@pytest.mark.parametrize(
    "snippet",
    [
        "def test_x(settings):\n    settings.OBSERVABILITY = {'SAMPLE_RATE': 0.0}\n",
        "def test_x(settings):\n    settings.OBSERVABILITY = {}\n",
        "def test_x(settings):\n    settings.OBSERVABILITY = {'A': 1, **NOT_SLOW}\n",
        "def test_x(settings):\n    settings.OBSERVABILITY = NAMES | {}\n",
    ],
)
def test_a_planted_observability_without_the_unreached_threshold_is_found(snippet):
    (problem,) = problems_in(snippet)
    assert "OBSERVABILITY without **NOT_SLOW first" in problem


@pytest.mark.parametrize(
    "snippet",
    [
        "def test_x(settings):\n    settings.OBSERVABILITY = {**NOT_SLOW, 'SAMPLE_RATE': 0}\n",
        "def test_x(settings):\n    settings.OBSERVABILITY = {**settings.OBSERVABILITY, 'A': 1}\n",
        "def restore(settings, before):\n    settings.OBSERVABILITY = before\n",
        # waits through the helper, a frozen clock's reading, a time stamp in an ID
        "from tests.polling import wait_for\ndef test_x():\n    wait_for(ready, 'ready')\n",
        "import time\ndef test_x():\n    key = f'order-{time.time_ns()}'\n    assert key\n",
        "def test_x(frozen):\n    frozen.tick(1.5)\n    assert duration() == 1.5\n",
        "import time\ndef test_x():\n    assert time.strftime('%Y') > '2000'\n",
    ],
)
def test_what_is_not_a_flaky_pattern_passes(snippet):
    assert problems_in(snippet) == []


def test_the_polling_helper_and_the_allowed_views_may_pause():
    sleeping = "import time\ndef wait_for():\n    time.sleep(0.05)\n"
    assert problems_in(sleeping, POLLING) == []
    assert problems_in(sleeping, "tests/e2e/test_other.py")
    view = "import asyncio\nasync def async_view(request):\n    await asyncio.sleep(0)\n"
    assert problems_in(view, "tests/urls.py") == []
    assert problems_in(view, "tests/e2e/urls.py")
