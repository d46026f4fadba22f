"""The IVR document corpus in tests/ivr/documents: each NAME.xml has its expected result in
NAME.expected (``error: <message>`` or ``valid`` and the parsed tree's outline).

``RINGBACK_REGOLD=1 pytest tests/ivr/test_documents.py`` rewrites the .expected files; review
the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ringback.ivr.errors import IvrError
from ringback.ivr.parse import ELEMENTS, STATEMENTS, parse

DOCUMENTS = Path(__file__).parent / "documents"
XML_FILES = sorted(DOCUMENTS.glob("*.xml"))


def validation_result(path: Path) -> str:
    try:
        document = parse(path.read_bytes())
    except IvrError as exc:
        return f"error: {exc}\n"
    return "valid\n" + document.root.summary() + "\n"


def test_the_corpus_holds_at_least_40_documents_valid_and_invalid() -> None:
    names = [path.stem for path in XML_FILES]
    assert len(names) >= 40
    assert sum(name.startswith("valid_") for name in names) >= 15
    assert sum(name.startswith("invalid_") for name in names) >= 25


def test_the_valid_documents_use_every_element_and_every_attribute() -> None:
    used: dict[str, set[str]] = {}
    for path in XML_FILES:
        if path.stem.startswith("valid_"):
            for node in parse(path.read_bytes()).root.walk():
                used.setdefault(node.tag, set()).update(node.attrs)
    assert set(used) >= STATEMENTS
    for tag in STATEMENTS:
        assert set(ELEMENTS[tag].attrs) <= used[tag], tag


@pytest.mark.parametrize("path", XML_FILES, ids=[path.stem for path in XML_FILES])
def test_each_document_validates_to_its_expected_result(path: Path) -> None:
    expected_file = path.with_suffix(".expected")
    result = validation_result(path)
    if os.environ.get("RINGBACK_REGOLD"):
        expected_file.write_text(result)
    assert result == expected_file.read_text()
    assert result.startswith("valid" if path.stem.startswith("valid_") else "error: ")
