"""The tree is the pipeline: every module imports only from its own stage or the stages below, and nothing cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "nodegen"
# Bottom to top. A module belongs to the first entry that is its name or a package holding it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("nodegen", "nodegen.collector", "nodegen.lazyimport", "nodegen.record", "nodegen.problems", "nodegen.errors",
     "nodegen.workspace", "nodegen.checksums", "nodegen.handedits", "nodegen.presets", "nodegen.jsontext"),
    ("nodegen.load", "nodegen.migrations"),
    ("nodegen.standard", "nodegen.schema"),
    ("nodegen.topology",),
    ("nodegen.rules",),
    ("nodegen.view",),
    ("nodegen.templating",),
    ("nodegen.targets",),
    ("nodegen.output", "nodegen.cache"),
    ("nodegen.pipeline",),
    ("nodegen.audit", "nodegen.verify", "nodegen.review", "nodegen.explain", "nodegen.init",
     "nodegen.importer"),
    ("nodegen.commands", "nodegen.cli", "nodegen.__main__", "nodegen.helptext"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    best = -1, -1  # (length of the matching name, layer)
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best[0]:
                best = len(name), index
    assert best[1] >= 0, f"{module}: in no layer of tests/test_layers.py"
    return best[1]


def imports(path: Path) -> set[str]:
    """Every nodegen module the file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("nodegen"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nodegen"):
            found.add(node.module)
            # `from nodegen.targets import compose` imports the submodule nodegen.targets.compose.
            found.update(f"{node.module}.{a.name}" for a in node.names
                         if (PACKAGE.parent / (node.module.replace(".", "/") + f"/{a.name}.py")).is_file())
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_stage_above_its_own(module: str) -> None:
    above = sorted(m for m in imports(MODULES[module]) if layer(m) > layer(module))
    assert above == [], f"{module} (stage {layer(module)}) imports {above}"


def test_no_import_cycle() -> None:
    graph = {m: {i for i in imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for nxt in sorted(graph[m]):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*path, m, nxt])
            if nxt not in state:
                visit(nxt, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_the_layers_name_every_module() -> None:
    for module in MODULES:
        layer(module)
