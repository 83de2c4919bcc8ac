"""The package's imports run downhill and make no cycle.

Layers, low to high (docs/ARCHITECTURE.md, "Layering"): a module may import any package
of its own layer or a lower one, never one above; between packages of one layer the
imports go one way only. Imports inside functions count: a lazy import that dodges a
cycle is still a cycle.
"""

import ast
from pathlib import Path
from typing import Dict, Iterator, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "slowmask"
LAYERS = [
    {"geometry", "utils", "collect_env"},
    {"config"},
    {"data", "masking", "targets", "checkpoint"},
    {"models"},
    {"methods"},
    {"engine", "features", "visualization", "prepare"},
    {"benchmarks"},
]
LAYER_OF = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: Dict[str, Path] = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(name: str) -> Iterator[str]:
    """The slowmask modules `name` imports (a `from package import module` names the module)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        yield from (target for target in targets if target in MODULES and target != name)


def package_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "slowmask"


GRAPH: Dict[str, Set[str]] = {
    name: {target for target in imported_modules(name) if not name.startswith(target + ".")} for name in MODULES
}


def test_every_package_has_a_layer():
    packages = {package_of(name) for name in MODULES} - {"slowmask"}
    assert packages <= set(LAYER_OF), f"add {sorted(packages - set(LAYER_OF))} to LAYERS and docs/ARCHITECTURE.md"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_downhill(name):
    mine = package_of(name)
    uphill = sorted(
        target
        for target in GRAPH[name]
        if package_of(target) != "slowmask" and LAYER_OF[package_of(target)] > LAYER_OF.get(mine, -1)
    )
    assert not uphill, f"{name} imports {uphill} from a higher layer; move the shared code down"


def test_packages_of_one_layer_import_each_other_one_way():
    edges = {(package_of(a), package_of(b)) for a in GRAPH for b in GRAPH[a] if package_of(a) != package_of(b)}
    both_ways = sorted((a, b) for a, b in edges if (b, a) in edges and a < b)
    assert not both_ways, f"packages importing each other: {both_ways}"


def test_no_import_cycle():
    state: Dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list) -> None:
        state[name] = 1
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(MODULES):
        if name not in state:
            visit(name, [name])
