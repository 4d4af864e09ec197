"""The package's imports follow the data flow: a module imports only from its own package or from packages below
it in LAYERS (function-local imports included), no two modules import each other, and no module imports another
module's private names."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "deftune"

# Lowest first. A package may import its own modules and any package in a lower layer; packages sharing a layer
# are independent of each other.
LAYERS = [
    ("errors", "settings"),
    ("methods",),
    ("config",),
    ("core",),
    ("data",),
    ("train",),
    ("evaluate",),
    ("safety",),
    ("plan", "sweep"),
    ("report",),
    ("pipeline",),
    ("cli", "testing", ""),  # "": deftune/__init__.py, the Python API
    ("__main__",),
]
RANK = {package: i for i, layer in enumerate(LAYERS) for package in layer}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (ROOT / relative).with_suffix(".py").is_file() or (ROOT / relative / "__init__.py").is_file()


def _imports(path: Path) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every deftune import in the file, at any depth (those
    only for type checkers left out)."""
    module = _module(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
        for n in ast.walk(block)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names if a.name.split(".")[0] == "deftune"]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            if target.split(".")[0] != "deftune":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub, "", node.lineno) if _is_module(sub) else (target, alias.name, node.lineno))
    return found


FILES = sorted(ROOT.rglob("*.py"))
GRAPH = {_module(f): _imports(f) for f in FILES}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_layer():
    assert {_package(m) for m in GRAPH} <= RANK.keys()


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_follow_the_data_flow(module):
    mine = _package(module)
    against = [
        f"line {line}: {target}"
        for target, _, line in GRAPH[module]
        if _package(target) != mine and RANK[_package(target)] >= RANK[mine]
    ]
    assert not against, f"{module} imports against the flow (or across one layer): {against}"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_private_names_cross_modules(module):
    private = [
        f"line {line}: {target}.{name}"
        for target, name, line in GRAPH[module]
        if name.startswith("_") and target != module
    ]
    assert not private, f"{module} imports private names: {private}"


def test_no_import_cycles():
    edges = {m: {t for t, _, _ in imports if t in GRAPH and t != m} for m, imports in GRAPH.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles, f"modules that import each other: {cycles}"
