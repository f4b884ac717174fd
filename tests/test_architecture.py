"""The import graph of the project, read with ``ast``: layers point down and no module imports itself back.

Every ``import`` statement counts, at module level and inside functions alike (a lazy import still couples the
modules); only imports under ``if TYPE_CHECKING:`` are left out, because they never run.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "training", "dashboard", "pages", "bench")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names each import statement asks for (``from a import b`` gives ``a.b``; resolved below)."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            found.extend(f"{base}.{alias.name}" if alias.name != "*" else base for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(project edges, every imported name)`` per project module."""
    files = {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py") if "__pycache__" not in p.parts}
    raw = {m: _imports(ast.parse(p.read_text(), str(p)), m, p.name == "__init__.py") for m, p in files.items()}
    edges: dict[str, set[str]] = {}
    for m, names in raw.items():
        targets = set()
        for name in names:
            parts = name.split(".")
            for k in range(len(parts), 0, -1):  # the longest prefix that is a project module
                if ".".join(parts[:k]) in files:
                    targets.add(".".join(parts[:k]))
                    break
        edges[m] = targets - {m}
    return edges, {m: set(names) for m, names in raw.items()}


EDGES, NAMES = _graph()


def _offenders(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{m} imports {n}"
        for m, names in NAMES.items()
        if m.split(".")[0] == layer
        for n in names
        if n.split(".")[0].startswith(forbidden)
    )


def test_the_graph_sees_the_whole_project():
    assert {"core.engine", "core.faces", "training.trainer", "dashboard.app", "bench.engine"} <= set(EDGES)
    assert "core.faces.registry" in EDGES["core.faces.blazeface"]  # from-imports resolve to submodules
    assert "core.registry" in EDGES["core.models._registry"]


@pytest.mark.parametrize(
    "layer,forbidden",
    [
        ("core", ("training", "dashboard", "pages", "bench", "tests", "streamlit")),
        ("training", ("dashboard", "pages", "bench", "tests", "streamlit")),
        ("dashboard", ("pages", "bench", "tests")),
        ("pages", ("bench", "tests")),
    ],
)
def test_layers_only_import_downwards(layer, forbidden):
    assert _offenders(layer, forbidden) == []


def test_bench_uses_only_the_test_harnesses_from_tests():
    """Benchmarks that drive a browser reuse ``tests/harness``; nothing else under ``tests`` is reachable."""
    bad = [o for o in _offenders("bench", ("tests",)) if not o.split(" imports ")[1].startswith("tests.harness")]
    assert bad == []


def test_no_import_cycles():
    try:
        order = list(graphlib.TopologicalSorter(EDGES).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")
    assert set(order) >= set(EDGES)
