"""structlog without rich and greenlet: a worker process ~5 MiB lighter.

structlog imports rich (and through it pygments and attrs, ~4 MiB of a process's memory and
~50 ms of its start) whenever rich is installed, for its development console's pretty
tracebacks, and greenlet (~1 MiB) for its deprecated thread-local contexts. ringback uses
neither: every traceback is formatted by ``structlog.processors.format_exc_info`` before any
renderer sees it (``logoutput.py``), and contexts are bound with ``structlog.contextvars``.
The CLI's tables import rich themselves when they print, and SQLAlchemy's asyncio layer
(PostgreSQL) imports greenlet. So when structlog is first imported, both are hidden from it
(structlog then takes its plain fallbacks) and shown again at once; :func:`install` (called
by ``ringback/__init__.py``) arranges it with a one-shot import hook, which does nothing in a
process that never imports structlog (the remote CLI)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

#: what structlog may import but ringback does not need it to
HIDDEN = ("rich", "greenlet")


class _Hiding(importlib.abc.Loader):
    """structlog's own loader, run with :data:`HIDDEN` unimportable."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        hidden = [name for name in HIDDEN if name not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]  # import name: ImportError
        try:
            self._loader.exec_module(module)
        finally:
            for name in hidden:
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]


class _StructlogFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "structlog":
            return None
        sys.meta_path.remove(self)  # once: the next finders find structlog itself
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Hiding(spec.loader)
        return spec


def install() -> None:
    """Hide :data:`HIDDEN` from structlog when it is imported (nothing if it is already)."""
    if "structlog" in sys.modules or any(isinstance(f, _StructlogFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _StructlogFinder())
