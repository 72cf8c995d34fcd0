"""Structure rules that keep the core honest: no import cycles, no reaching into privates.

Both are checked on the source (AST), so they hold for every module whether or not a test
imports it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import vidgo_async

PACKAGE = Path(vidgo_async.__file__).parent


def _modules() -> dict[str, ast.Module]:
    trees = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        trees[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return trees


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(name: str, tree: ast.Module, known: set[str]) -> Iterator[str]:
    """Yield the package modules ``name`` imports when it is imported (module level only)."""
    package = (
        name
        if name in known and (PACKAGE.parent / name.replace(".", "/")).is_dir()
        else (name.rpartition(".")[0])
    )
    body: list[ast.stmt] = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If) and not _is_type_checking(node):
            body.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            body.extend(node.body)
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
            if target in known:
                yield target
            for alias in node.names:
                full = f"{target}.{alias.name}"
                if full in known:
                    yield full
        elif isinstance(node, ast.ImportFrom) and node.module in known:
            yield str(node.module)


def test_no_import_cycle_between_package_modules() -> None:
    """The package's modules import each other without a cycle (TYPE_CHECKING imports aside)."""
    trees = _modules()
    known = set(trees)
    graph = {
        name: set(_runtime_imports(name, tree, known)) - {name} for name, tree in trees.items()
    }
    # The package itself re-exports its modules: edges into it are not cycles through it.
    for edges in graph.values():
        edges.discard("vidgo_async")
    # The walk sees the real imports (a graph without edges would prove nothing).
    assert "vidgo_async._polling" in graph["vidgo_async._client"]
    assert "vidgo_async._dispatch" in graph["vidgo_async._orchestrator"]
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def _defined_private_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if name.startswith("_") and not name.endswith("_")}


def test_no_module_uses_another_modules_private_attributes() -> None:
    """A ``x._name`` access names something its own module defines, never another's private."""
    trees = _modules()
    own = {name: _defined_private_names(tree) for name, tree in trees.items()}
    everyone = set().union(*own.values())
    problems = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            attr = node.attr
            if not attr.startswith("_") or attr.endswith("_"):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if attr in own[name] or attr not in everyone:
                continue  # its own, or a private of the standard library or a dependency
            problems.append(f"{name}:{node.lineno}: .{attr}")
    assert problems == []


def test_no_module_imports_another_modules_private_names() -> None:
    """``from ._x import _Name`` is reaching into a private too; importing a private module is not."""
    trees = _modules()
    problems = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = name.split(".")
            if not (PACKAGE.parent / name.replace(".", "/")).is_dir():
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and f"{source}.{alias.name}" not in trees:
                    problems.append(f"{name}:{node.lineno}: {alias.name} from {source}")
    assert problems == []
