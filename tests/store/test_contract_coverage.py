"""The store's contract suite covers every public method of :class:`Store` (issue 13).

The public methods are found by introspection (inherited from the mixins too); the calls are
found by reading the sources of tests/store/ with ``ast``: an attribute call ``<x>.name(...)``
whose receiver ends in ``store`` (``store.claim(…)``, ``self.store.claim(…)``). The suite's
store fixture runs every such test on SQLite and on PostgreSQL, so a method named here is
exercised on both. A new public method fails this test until a contract test calls it.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from ringback.store import Store

HERE = Path(__file__).parent
#: fixtures that give stores on SQLite and on PostgreSQL (the ``backend`` parameter)
BOTH_STORES = frozenset({"store", "open_shared"})


def public_methods(cls: type) -> set[str]:
    """Names of the public functions and coroutine functions of ``cls`` (mixins included)."""
    return {
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_")
        and (inspect.isfunction(member) or inspect.iscoroutinefunction(member))
    }


def store_calls(source: str) -> set[str]:
    """Names of the methods called on a store in ``source``."""
    called: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = ast.unparse(node.func.value)
            if receiver.rsplit(".", 1)[-1].lower().endswith("store"):
                called.add(node.func.attr)
    return called


def suite_sources() -> dict[str, str]:
    return {
        path.name: path.read_text()
        for path in sorted(HERE.glob("test_*.py"))
        if path.name != Path(__file__).name
    }


def suite_calls() -> set[str]:
    called: set[str] = set()
    for source in suite_sources().values():
        called |= store_calls(source)
    return called


def one_store_tests(source: str) -> list[str]:
    """Tests in ``source`` that call a store method but take no fixture giving both stores."""
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test_"
        ):
            takes = {arg.arg for arg in node.args.args}
            if store_calls(ast.unparse(node)) and not takes & BOTH_STORES:
                found.append(node.name)
    return found


def test_store_has_the_public_methods_the_issue_counts() -> None:
    methods = public_methods(Store)
    assert len(methods) >= 60  # about sixty: a listing that found few would prove nothing
    assert {"claim", "put_number", "create_subscription", "add_credential", "on_wake"} <= methods


def test_the_guard_names_a_method_no_test_calls() -> None:
    source = "async def test_x(store, other):\n    await store.claim()\n    other.heartbeat()\n"
    assert store_calls(source) == {"claim"}
    assert {"claim", "heartbeat"} - store_calls(source) == {"heartbeat"}


def test_the_guard_names_a_test_that_runs_on_one_store_only() -> None:
    source = (
        "async def test_a(store):\n    await store.claim()\n"
        "async def test_b(sqlite_store):\n    await sqlite_store.claim()\n"
        "def test_c(x):\n    x.claim()\n"
    )
    assert one_store_tests(source) == ["test_b"]


def test_every_test_that_calls_the_store_runs_on_both_stores() -> None:
    one_store = {
        f"{name}::{test}"
        for name, source in suite_sources().items()
        for test in one_store_tests(source)
    }
    assert not one_store, f"take the store or open_shared fixture: {sorted(one_store)}"


def test_every_public_method_of_the_store_is_called_by_a_contract_test() -> None:
    missing = sorted(public_methods(Store) - suite_calls())
    assert not missing, f"no test in tests/store/ calls Store.{', Store.'.join(missing)}"
