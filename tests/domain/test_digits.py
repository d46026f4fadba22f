"""ascii_digits: what every parser of a port, count or tag may hand to ``int()``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ringback.domain.digits import ascii_digits


@given(st.text(max_size=12))
def test_ascii_digits_are_exactly_what_int_reads_as_plain_ascii(text: str) -> None:
    plain = text != "" and all("0" <= ch <= "9" for ch in text)
    assert ascii_digits(text) is plain
    if ascii_digits(text):
        assert str(int(text)).zfill(len(text)) == text


def test_unicode_digits_are_not_ascii_digits() -> None:
    for text in ("²", "①", "٣", "１２", "1²"):
        assert text.isdigit()
        assert not ascii_digits(text)
