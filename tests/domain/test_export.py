"""Export cells: nothing a spreadsheet would run as a formula, every value read back as written
(but for the apostrophe before formula-like text), times UTC ISO 8601."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ringback.domain.export import FORMULA_STARTS, csv_lines, iso_utc, safe_cell


@given(st.lists(st.lists(st.text(), min_size=1, max_size=5), min_size=1, max_size=5))
def test_no_exported_cell_starts_like_a_formula_and_each_reads_back(
    rows: list[list[str]],
) -> None:
    text = csv_lines(rows)
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert len(read) == len(rows)
    for written, back in zip(rows, read, strict=True):
        for value, cell in zip(written, back, strict=True):
            assert not cell.startswith(FORMULA_STARTS)
            assert cell == (("'" + value) if value.startswith(FORMULA_STARTS) else value)


def test_cells_of_numbers_booleans_and_missing_values() -> None:
    assert [safe_cell(v) for v in (None, True, 3, -5, "+336", "@x", "a=b")] == [
        "", "true", "3", "'-5", "'+336", "'@x", "a=b",
    ]  # fmt: skip


def test_times_are_utc_iso_8601_with_z_whatever_their_zone() -> None:
    paris = timezone(timedelta(hours=2))
    assert iso_utc(datetime(2024, 5, 1, 11, 0, tzinfo=paris)) == "2024-05-01T09:00:00Z"
    assert iso_utc(datetime(2024, 5, 1, 9, 0, 0, 250_000, tzinfo=UTC)) == "2024-05-01T09:00:00.250Z"
    assert iso_utc(None) == ""
