"""Instructions per Python function, inclusive and self, from one callgrind run.

bench/calltree.c runs every Python frame through a trampoline of its own, one per node of
the calling-context tree (parent node, code object); this module builds it (gcc, the
trampolines written as assembly, each a named function callgrind reports), loads it in the
measured process (`start()`, `finish(path)`), and reads a callgrind file and the nodes
back into a tree: each node's inclusive instructions are callgrind's cost of the calls to
its trampoline, its self instructions what its children do not account for (the bytecode
it runs and the C it calls: dicts, strings, regular expressions, locks).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import subprocess
import sysconfig
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "calltree.c"
TRAMPOLINES = 1 << 17  # nodes: a Django request makes a few thousand
# sub $8,%rsp; call *%rcx; add $8,%rsp; ret: a call to the 4th argument, the stack aligned.
TRAMPOLINE = ".byte 0x48,0x83,0xec,0x08,0xff,0xd1,0x48,0x83,0xc4,0x08,0xc3"


def _assembly() -> str:
    lines = ["\t.text"]
    for node in range(TRAMPOLINES):
        name = f"ct_{node:06d}"
        lines += [
            "\t.p2align 4",
            f"\t.type {name}, @function",
            f"{name}:",
            f"\t{TRAMPOLINE}",
            f"\t.size {name}, .-{name}",
        ]
    lines += [
        "\t.section .data.rel.ro",
        "\t.p2align 3",
        "\t.globl ct_table",
        "\t.hidden ct_table",
        "ct_table:",
        *(f"\t.quad ct_{node:06d}" for node in range(TRAMPOLINES)),
        "\t.globl ct_count",
        "\t.hidden ct_count",
        "ct_count:",
        f"\t.long {TRAMPOLINES}",
        '\t.section .note.GNU-stack,"",@progbits',
    ]
    return "\n".join(lines) + "\n"


def build() -> Path:
    """The compiled module (cached by its source's hash)."""
    digest = hashlib.sha256(SOURCE.read_bytes() + str(TRAMPOLINES).encode()).hexdigest()[:16]
    directory = Path(tempfile.gettempdir()) / f"bench-calltree-{digest}"
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    library = directory / f"_calltree{suffix}"
    if library.exists():
        return library
    directory.mkdir(exist_ok=True)
    assembly = directory / "trampolines.s"
    assembly.write_text(_assembly())
    partial = directory / f"partial-{library.name}"
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-g",
            "-shared",
            "-fPIC",
            f"-I{sysconfig.get_paths()['include']}",
            str(SOURCE),
            str(assembly),
            "-o",
            str(partial),
        ],
        check=True,
    )
    partial.rename(library)
    return library


def load() -> ModuleType:
    library = build()
    spec = importlib.util.spec_from_file_location("_calltree", library)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Node:
    id: int
    parent: int
    file: str
    line: int
    name: str
    inclusive: int = 0
    children: list[Node] = field(default_factory=list)

    @property
    def function(self) -> str:
        return f"{self.file}:{self.line}({self.name})"

    @property
    def self_cost(self) -> int:
        return self.inclusive - sum(child.inclusive for child in self.children)


_NAMED = re.compile(r"^(c?fn)=\((\d+)\)(?: (.*))?$")


def callee_costs(callgrind_out: Path, wanted: Callable[[str], bool]) -> tuple[dict[str, int], int]:
    """The inclusive Ir of the calls to each function `wanted` names, and the run's total.

    Callgrind writes a call as `cfn=` (the callee), `calls=` and a line whose second number
    is the call's inclusive cost; names are written once, then referred to as `(id)`.
    """
    names: dict[str, str] = {}
    costs: dict[str, int] = defaultdict(int)
    total = 0
    callee = ""
    after_calls = False
    with callgrind_out.open() as lines:
        for line in lines:
            if after_calls:
                after_calls = False
                if wanted(callee):
                    costs[callee] += int(line.split()[1])
                continue
            if line.startswith("calls="):
                after_calls = True
            elif line.startswith(("fn=", "cfn=")):
                match = _NAMED.match(line.rstrip("\n"))
                if match is None:
                    continue
                kind, ident, name = match.groups()
                if name is not None:
                    names[ident] = name
                if kind == "cfn":
                    callee = names.get(ident, "")
            elif line.startswith(("totals:", "summary:")):
                total = int(line.split()[1])
    return dict(costs), total


def trampoline_costs(callgrind_out: Path) -> tuple[dict[int, int], int]:
    """Each trampoline's inclusive Ir (the calls to it), and the run's total."""
    costs, total = callee_costs(callgrind_out, lambda name: name.startswith("ct_"))
    return {int(name[3:]): cost for name, cost in costs.items()}, total


def read_tree(nodes_file: Path, callgrind_out: Path) -> tuple[Node, int]:
    """The calling-context tree (a root above every thread's first frames) and the total Ir."""
    costs, total = trampoline_costs(callgrind_out)
    root = Node(0, -1, "", 0, "<root>")
    by_id = {0: root}
    with nodes_file.open() as lines:
        for line in lines:
            if line.startswith("#"):
                continue
            ident, parent, file, number, name = line.rstrip("\n").split("\t")
            node = Node(int(ident), int(parent), file, int(number), name)
            node.inclusive = costs.get(node.id, 0)
            by_id[node.id] = node
    for node in by_id.values():
        if node.id:
            by_id[node.parent].children.append(node)
    root.inclusive = sum(child.inclusive for child in root.children)
    return root, total


def walk(node: Node, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Node]]:
    """Every node under `node` with its path of functions (the node's own last)."""
    found: list[tuple[tuple[str, ...], Node]] = []
    stack = [(child, (*path, child.function)) for child in node.children]
    while stack:
        current, current_path = stack.pop()
        found.append((current_path, current))
        stack.extend((child, (*current_path, child.function)) for child in current.children)
    return found
