"""Modules stay small enough to read in one sitting (issue 13): at most 600 lines, except the
migrations (a history, read one step at a time)."""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "ringback"
MAX_LINES = 600
EXEMPT = {"store/migrations.py"}


def test_no_source_module_is_over_600_lines() -> None:
    long = {
        str(path.relative_to(SRC)): lines
        for path in sorted(SRC.rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and str(path.relative_to(SRC)) not in EXEMPT
    }
    assert not long, f"split these (one concept per module): {long}"
