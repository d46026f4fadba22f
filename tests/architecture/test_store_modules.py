"""The store's own layout (docs/architecture.md, store/), checked on the source itself:

- its modules import each other without a cycle, ``TYPE_CHECKING`` imports included;
- only the two drivers, ``store/sqlite.py`` and ``store/postgres.py``, tell the databases apart
  (no ``is_sqlite``, no ``.dialect``, no test of a dialect's or URL scheme's name, no
  dialect-specific SQLAlchemy constructs) anywhere else in the store.
"""

from __future__ import annotations

import ast
from pathlib import Path

STORE = Path(__file__).resolve().parents[2] / "src" / "ringback" / "store"
PACKAGE = "ringback.store"
DRIVERS = {"sqlite", "postgres", "sqlite_readers"}  # the last: part of SQLite's driver
#: the names of the databases (dialects, URL schemes) a test may not compare with
DIALECT_NAMES = {"sqlite", "sqlite+aiosqlite", "postgres", "postgresql", "postgresql+asyncpg"}
#: identifiers that can only be a test of the dialect
DIALECT_FLAGS = {"is_sqlite", "is_postgres", "is_postgresql", "is_pg"}
#: modules that may import ``sqlalchemy.dialects`` (table definitions: per-dialect column types)
DIALECT_TYPES_ALLOWED = {"schema"}


def _modules(root: Path) -> dict[str, ast.Module]:
    """The store's modules by their name in the package (``__init__`` for the face)."""
    return {
        path.stem: ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(root.glob("*.py"))
    }


def _store_imports(tree: ast.Module, names: set[str]) -> set[str]:
    """The store modules a module imports, wherever the import is (``TYPE_CHECKING`` too).

    ``from ringback.store import x`` imports the module ``x`` when there is one, else a name of
    the package's face (``__init__``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name[len(PACKAGE) + 1 :].split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1:  # relative, from inside the package
                module = f"{PACKAGE}.{module}" if module else PACKAGE
            if module == PACKAGE:
                for alias in node.names:
                    found.add(alias.name if alias.name in names else "__init__")
            elif module.startswith(PACKAGE + "."):
                found.add(module[len(PACKAGE) + 1 :].split(".")[0])
    return found & names


def import_graph(root: Path = STORE) -> dict[str, set[str]]:
    trees = _modules(root)
    names = set(trees)
    return {name: _store_imports(tree, names) - {name} for name, tree in trees.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (its modules in order, the first repeated), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _names_a_dialect(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value in DIALECT_NAMES
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_names_a_dialect(element) for element in node.elts)
    return False


def dialect_tests(tree: ast.Module, module: str) -> list[str]:
    """Where a module tells the databases apart: ``line: what``."""
    found: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Name) and node.id in DIALECT_FLAGS:
            found.append(f"{line}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in DIALECT_FLAGS | {"dialect"}:
            found.append(f"{line}: .{node.attr}")
        elif isinstance(node, ast.Compare) and any(
            _names_a_dialect(side) for side in [node.left, *node.comparators]
        ):
            found.append(f"{line}: a comparison with a database's name")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("startswith", "endswith")
            and any(_names_a_dialect(arg) for arg in node.args)
        ):
            found.append(f"{line}: a URL tested for a database's name")
        elif (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("sqlalchemy.dialects")
            and module not in DIALECT_TYPES_ALLOWED
        ):
            found.append(f"{line}: import from {node.module}")
    return found


def dialect_tests_outside_drivers(root: Path = STORE) -> dict[str, list[str]]:
    return {
        name: where
        for name, tree in _modules(root).items()
        if name not in DRIVERS and (where := dialect_tests(tree, name))
    }


def test_the_store_modules_import_each_other_without_a_cycle() -> None:
    graph = import_graph()
    assert {"db", "driver", *DRIVERS} <= set(graph), "the store's layout changed: update me"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in store/: " + " -> ".join(cycle or [])


def test_only_the_drivers_tell_the_databases_apart() -> None:
    found = dialect_tests_outside_drivers()
    assert not found, f"dialect tests outside store/sqlite.py and store/postgres.py: {found}"


def test_the_checks_see_what_they_look_for() -> None:
    """The checks themselves: a cycle through a ``TYPE_CHECKING`` import and every kind of
    dialect test are found."""
    a = ast.parse("from ringback.store.b import x\n")
    b = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ringback.store.a import y\n"
    )
    names = {"a", "b"}
    graph = {"a": _store_imports(a, names), "b": _store_imports(b, names)}
    assert find_cycle(graph) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = (
        "from sqlalchemy.dialects import sqlite\n"
        "if self.is_sqlite: pass\n"
        "if engine.dialect.name == 'postgresql': pass\n"
        "if scheme in ('sqlite', 'sqlite+aiosqlite'): pass\n"
        "if url.startswith('sqlite'): pass\n"
    )
    lines = sorted(int(w.split(":")[0]) for w in dialect_tests(ast.parse(source), "x"))
    assert lines == [1, 2, 3, 3, 4, 5]
