"""The clock rule (docs/architecture.md: Time), checked on the source itself.

Every reading of the time and every wait goes through the injected clock
(:class:`ringback.clock.Clock`), so tests move a ``FakeClock`` instead of waiting and every
timestamp is on the clock the service aligned. Outside ``clock.py`` the scan below fails on
``asyncio.sleep(x)`` with ``x`` other than a literal 0 (``sleep(0)`` is a yield to the loop,
not a wait), on any use of ``time.time``, ``time.monotonic`` (a call, or the function as a
default argument) and on ``datetime.now(`` / ``datetime.utcnow(``. ``ALLOWED`` names the
modules that must follow real time, each with why; an entry that no longer needs it fails too,
so the list stays exact.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "ringback"

#: the module that owns real time
CLOCK = "ringback.clock"

#: module -> why it must follow real time
ALLOWED: dict[str, str] = {
    "ringback.telephony.sip.media": "RTP media pacing: packets go out every 20 ms of real time",
    "ringback.telephony.sip.call_media": "a media wait on a live call lasts real seconds",
    "ringback.telephony.sip.amd_tap": (
        "answering-machine detection reads a live call's audio as it arrives, in real time"
    ),
    "ringback.telephony.pacing": (
        "the shared 20 ms ticker: RTP and T.38 go out every 20 ms of real time"
    ),
    "ringback.stalls": "the loop-stall monitor measures the event loop's real lag",
    "ringback.logoutput": "a log line carries the wall-clock time it was written at",
    "ringback.ivr.signing": (
        "an IVR request signature's t= is wall-clock time: the app server checks it against "
        "its own wall clock"
    ),
    "ringback.http_pool": (
        "a kept-alive connection's idle age is measured against the server's keep-alive timeout, "
        "in real seconds"
    ),
    "ringback.telephony.audio_files": (
        "how long ago a file was looked at on disk, which the files' own times do not follow"
    ),
    "ringback.store.sqlite_writer": (
        "a busy SQLite lock is held by another connection for real milliseconds"
    ),
}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_zero(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value in (0, 0.0) and node.value is not False


class _Scan(ast.NodeVisitor):
    """Finds real-time reads and waits, following ``import x as y`` / ``from x import y``."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []
        # local name -> what it is: "asyncio", "time", "datetime" (the class), "datetime-module",
        # or a function: "asyncio.sleep", "time.time", "time.monotonic"
        self.names: dict[str, str] = {}

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name in ("asyncio", "time"):
                self.names[alias.asname or alias.name] = alias.name
            elif alias.name == "datetime":
                self.names[alias.asname or alias.name] = "datetime-module"

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            what = f"{node.module}.{alias.name}"
            if what in ("asyncio.sleep", "time.time", "time.monotonic"):
                self.names[alias.asname or alias.name] = what
            elif what == "datetime.datetime":
                self.names[alias.asname or alias.name] = "datetime"

    def _resolve(self, node: ast.expr) -> str | None:
        """The dotted meaning of a name or attribute chain, as far as the imports say."""
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._resolve(node.value)
            if base == "datetime-module" and node.attr == "datetime":
                return "datetime"
            if base is not None:
                return f"{base}.{node.attr}"
        return None

    def visit_Call(self, node: ast.Call) -> None:
        what = self._resolve(node.func)
        if what == "asyncio.sleep":
            if not (node.args and _is_zero(node.args[0])):
                self.found.append((node.lineno, "asyncio.sleep(...) that waits real time"))
        elif what in ("datetime.now", "datetime.utcnow"):
            self.found.append((node.lineno, f"{what}()"))
        self.generic_visit(node)

    def _reference(self, node: ast.Name | ast.Attribute) -> None:
        what = self._resolve(node)
        if what in ("time.time", "time.monotonic"):
            self.found.append((node.lineno, what))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._reference(node)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._reference(node)


def _violations() -> dict[str, list[tuple[int, str]]]:
    found: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(SRC.rglob("*.py")):
        module = _module(path)
        if module == CLOCK:
            continue
        scan = _Scan()
        # imports first, so a name imported below its first use still resolves
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                scan.visit(node)
        scan.visit(tree)
        if scan.found:
            found[module] = sorted(set(scan.found))
    return found


def test_time_is_read_and_waited_through_the_injected_clock() -> None:
    found = _violations()
    unexpected = {
        module: [f"line {line}: {what}" for line, what in sites]
        for module, sites in found.items()
        if module not in ALLOWED
    }
    assert not unexpected, (
        "real time outside ringback.clock (inject a Clock and use clock.now() / "
        f"clock.sleep(), or list the module in ALLOWED with why): {unexpected}"
    )


def test_every_allowed_module_still_needs_real_time() -> None:
    found = _violations()
    stale = sorted(set(ALLOWED) - set(found))
    assert not stale, f"no real-time use left in {stale}: remove them from ALLOWED"


def test_the_scan_sees_every_form() -> None:
    """The scan itself: each form is caught, a yield (``sleep(0)``) is not."""
    source = """
import asyncio as aio
import time
import datetime as dt
from asyncio import sleep
from datetime import datetime
from time import monotonic as mono

async def f(now=time.monotonic, t=mono):
    await aio.sleep(1.0)
    await sleep(delay)
    await aio.sleep(0)
    time.time()
    datetime.now()
    dt.datetime.now(dt.UTC)
    datetime.utcnow()
"""
    scan = _Scan()
    scan.visit(ast.parse(source))
    assert [line for line, _ in sorted(scan.found)] == [9, 9, 10, 11, 13, 14, 15, 16]
