"""The rules of do-not-call entries: a number is matched by itself or any of its prefixes,
formatting aside; a CSV import reads numbers, prefixes and per-line columns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ringback.domain.suppression import (
    lookup_keys,
    matches,
    normalize,
    parse_entry_number,
    read_csv,
)

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def test_a_number_is_looked_up_by_each_of_its_prefixes_longest_first() -> None:
    assert lookup_keys("+33 (6) 12-34") == [
        "+3361234",
        "+336123",
        "+33612",
        "+3361",
        "+336",
        "+33",
        "+3",
    ]
    assert lookup_keys("sip:0312@pbx.example") == ["0312", "031", "03", "0"]
    assert lookup_keys("sip:alice@pbx.example") == []


def test_a_number_entry_matches_only_itself_and_a_prefix_every_longer_number() -> None:
    assert matches("0312", False, "03-12") and not matches("0312", False, "03123")
    assert matches("0312", True, "0312999") and not matches("0312", True, "031")
    assert normalize(" +33 6.12 ") == "+33612"


@pytest.mark.parametrize("text", ["", "+", "abc", "03 12 x", "1" * 21, "*"])
def test_an_entry_that_is_not_digits_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a number or a prefix"):
        parse_entry_number(text)


def test_a_csv_reads_plain_lines_header_columns_and_names_bad_lines() -> None:
    entries, problems = read_csv(
        ["0311\n", "0322*,vip,web,2027-01-01 00:00:00\n", "\n"], list_name="dnc", source="f",
        expires_at=None, now=NOW,
    )  # fmt: skip
    assert problems == []
    assert [(e.number, e.prefix, e.list_name, e.source) for e in entries] == [
        ("0311", False, "dnc", "f"), ("0322", True, "vip", "web"),
    ]  # fmt: skip
    assert entries[1].expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    _, problems = read_csv(
        ["number,source\n", "0311,x\n", "03x,y\n", "0312,2001\n"], list_name="dnc", source="",
        expires_at=None, now=NOW,
    )  # fmt: skip
    assert [(p.line, p.column) for p in problems] == [(3, "number")]
    _, problems = read_csv(["number,colour\n"], list_name="d", source="", expires_at=None, now=NOW)
    assert problems[0].msg == "unknown column 'colour'"
    _, problems = read_csv(
        ["0311,dnc,x,2001-01-01 00:00:00\n"], list_name="d", source="", expires_at=None, now=NOW
    )
    assert (problems[0].column, problems[0].msg) == (
        "expires_at",
        "expires_at must be in the future",
    )
