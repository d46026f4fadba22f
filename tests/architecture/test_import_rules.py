"""The layers' import rules (DESIGN §2, README: Architecture), checked on the source itself.

Each rule names the packages it binds and what they may not import. The edges (the API, the
CLI, the IVR, the webhook dispatcher) reach the store only through the application layer
(``ringback.service``); the composition roots (``ringback serve``) build the API app."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "ringback"


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ringback module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = _module(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
    return {name for name in found if name == "ringback" or name.startswith("ringback.")}


def _in(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


#: who, what it may not import ("*": anything of ringback outside ``who`` itself), why
RULES: list[tuple[tuple[str, ...], tuple[str, ...], str]] = [
    (("ringback.domain",), ("*",), "domain/ is pure logic"),
    (
        ("ringback.config", "ringback.clock"),
        (
            "ringback.telephony",
            "ringback.store",
            "ringback.service",
            "ringback.engine",
            "ringback.ivr",
            "ringback.webhooks",
        ),
        "settings and the clock are read by every layer, so they import none of them",
    ),
    (
        ("ringback.store",),
        (
            "ringback.telephony",
            "ringback.api",
            "ringback.cli",
            "ringback.ivr",
            "ringback.webhooks",
            "ringback.engine",
            "ringback.service",
        ),
        "store/ is the bottom layer: SQL and rows only",
    ),
    (
        ("ringback.api", "ringback.cli", "ringback.ivr", "ringback.webhooks"),
        ("ringback.store",),
        "the edges reach the store only through the application layer",
    ),
    (
        ("ringback.telephony",),
        ("ringback.store", "ringback.api", "ringback.cli"),
        "dialers know calls, not tasks or their storage",
    ),
    (("ringback.engine", "ringback.service"), ("ringback.cli",), "the CLI is an edge"),
    (
        ("ringback.cli.remote",),
        ("ringback.store", "ringback.service", "ringback.api", "ringback.engine"),
        "the remote commands drive a server over HTTP only",
    ),
    (
        ("ringback.service",),
        ("ringback.webhooks", "ringback.engine"),
        "the application layer is below the dispatcher and the engine that call it",
    ),
    (
        ("ringback.console",),
        (
            "ringback.store",
            "ringback.engine",
            "ringback.telephony",
            "ringback.webhooks",
            "ringback.ivr",
        ),
        "the console is an edge: its pages call the application layer (service/), not the store",
    ),
    (("ringback",), ("ringback.api",), "nothing outside api/ imports the API"),
    (("ringback",), ("ringback.cli",), "nothing outside cli/ imports the CLI"),
]

#: the entry points that build the service (the API server included) and the command
COMPOSITION_ROOTS = {"ringback.cli.serve", "ringback.__main__"}


EDGES = ("ringback.api", "ringback.cli")


def _breaks(module: str, imported: str) -> bool:
    for who, banned, _why in RULES:
        if not _in(module, who):
            continue
        for forbidden in banned:
            if forbidden == "*":
                if imported != "ringback" and not _in(imported, who):
                    return True
            elif (
                _in(imported, (forbidden,))
                and not _in(module, (forbidden,))
                and not (forbidden in EDGES and module in COMPOSITION_ROOTS)
            ):
                return True
    return False


def violations() -> set[tuple[str, str]]:
    return {
        (_module(path), imported)
        for path in sorted(SRC.rglob("*.py"))
        for imported in _imports(path)
        if _breaks(_module(path), imported)
    }


def test_no_module_breaks_a_layer_rule() -> None:
    found = violations()
    assert not found, "imports against the layer rules:\n" + "\n".join(
        f"  {module} imports {imported}" for module, imported in sorted(found)
    )


def test_the_rules_read_as_written() -> None:
    assert _breaks("ringback.domain.tasks", "ringback.store")
    assert not _breaks("ringback.domain.tasks", "ringback.domain.model")
    assert _breaks("ringback.store", "ringback.telephony.base")
    assert _breaks("ringback.webhooks.dispatcher", "ringback.api.schemas")
    assert not _breaks("ringback.api.routes.tasks", "ringback.api.schemas")
    assert not _breaks("ringback.cli.serve", "ringback.api.app")  # the composition root
    assert _breaks("ringback.cli.tasks", "ringback.store.records")
    assert not _breaks("ringback.service", "ringback.store")
    assert _breaks("ringback.telephony.sip.call", "ringback.store")
    assert _breaks("ringback.engine.worker", "ringback.cli.common")
    assert not _breaks("ringback.__main__", "ringback.cli")
    assert _breaks("ringback.config", "ringback.telephony.sip.dialer")
    assert _breaks("ringback.console.pages", "ringback.store")
    assert _breaks("ringback.console.pages", "ringback.api.deps")
    assert not _breaks("ringback.console.pages", "ringback.service")
    assert not _breaks("ringback.api.app", "ringback.console")
