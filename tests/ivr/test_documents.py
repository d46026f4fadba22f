"""The IVR document corpus in tests/ivr/documents: each NAME.xml has its expected result in
NAME.expected: ``error: <message>``, or ``valid``, the parsed tree's outline, and the trace of
the document run as a simulated inbound call.

The run: caller 09012341234, called 05068680000, CallUUID ``call-uuid``, the fake clock at
2026-01-05 12:00 UTC, the simulator's number rules (a number ending in 486 is busy), HTTP
switched off (:class:`~ringback.ivr.fetch.OfflineFetcher`: every URL fails, as if the servers
were down), a client storage holding a silent WAV for every fixed Play path, a TIFF for every
fixed SendFax path (a small one-page drawing), ``data/info.json`` and the documents under
``documents/storage/``, and a
real job queue (:class:`~ringback.service.TaskService` on a fresh SQLite store) for AddJob.
The keys the caller presses come from the ``--- run`` line of NAME.expected
(``--- run, caller presses '1#'``); no such text means none.

``RINGBACK_REGOLD=1 pytest tests/ivr/test_documents.py`` rewrites the .expected files (keeping
their digit scripts); review the diff before committing it.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.ivr.errors import IvrError
from ringback.ivr.fetch import OfflineFetcher
from ringback.ivr.parse import ELEMENTS, STATEMENTS, Document, parse
from ringback.ivr.simulate import simulate_call
from ringback.service import TaskService
from ringback.store.db import open_store
from support import make_wav

DOCUMENTS = Path(__file__).parent / "documents"
XML_FILES = sorted(DOCUMENTS.glob("*.xml"))
STORED_DOCUMENTS = DOCUMENTS / "storage"
RUN_LINE = re.compile(r"^--- run(?:, caller presses '(?P<digits>[^']*)')?$", re.MULTILINE)
CLIENT = 1


def validation_result(path: Path) -> str:
    try:
        document = parse(path.read_bytes())
    except IvrError as exc:
        return f"error: {exc}\n"
    return "valid\n" + document.root.summary() + "\n"


def load(path: Path) -> Document:
    return parse(path.read_bytes())


def digits_of(expected: str) -> str:
    found = RUN_LINE.search(expected)
    return (found.group("digits") or "") if found else ""


def fax_document() -> bytes:
    """A small one-page document to fax (a 1-bit TIFF with a frame)."""
    page = Image.new("1", (400, 300), 1)
    ImageDraw.Draw(page).rectangle((10, 10, 389, 289), outline=0, width=2)
    out = io.BytesIO()
    page.save(out, format="TIFF", dpi=(100, 100))
    return out.getvalue()


def prepare_storage(root: Path, document: Document) -> Storage:
    storage = Storage(root)
    for node in document.root.walk():
        fixed = node.text and "{{" not in node.text and "://" not in node.text
        if node.tag == "Play" and fixed:
            make_wav(storage.resolve(CLIENT, node.text or ""), seconds=0.25)
        if node.tag == "GetDigits" and "invalidDigitsSound" in node.attrs:
            make_wav(storage.resolve(CLIENT, node.attrs["invalidDigitsSound"]), seconds=0.25)
        if node.tag == "SendFax" and fixed:
            storage.write_bytes(CLIENT, node.text or "", fax_document())
    storage.write_bytes(CLIENT, "data/info.json", b'{"info": "from storage", "count": 3}')
    for stored in STORED_DOCUMENTS.rglob("*.xml"):
        storage.write_bytes(CLIENT, str(stored.relative_to(STORED_DOCUMENTS)), stored.read_bytes())
    return storage


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[TaskService]:
    clock = FakeClock()
    store = await open_store(f"sqlite:///{tmp_path / 'jobs.db'}", clock, migrate=True)
    await store.ensure_client("corpus", clock.now())
    try:
        yield TaskService(store, clock)
    finally:
        await store.close()


def heard(entry: dict[str, Any]) -> str:
    if entry["type"] == "speak":
        return repr(entry["text"])
    if entry["type"] == "play":
        return Path(entry["file"]).name
    return str(entry["type"])


async def run_result(document: Document, digits: str, tmp_path: Path, service: TaskService) -> str:
    result, record = await simulate_call(
        document,
        FakeClock(),
        digits=digits,
        variables={"CallUUID": "call-uuid"},
        storage=prepare_storage(tmp_path / "storage", document),
        client_id=CLIENT,
        jobs=service,
        fetcher=OfflineFetcher(),
    )
    header = "--- run" + (f", caller presses {digits!r}" if digits else "")
    lines = [header, *(str(entry) for entry in result.trace)]
    if record.played:
        lines.append("heard: " + " | ".join(heard(entry) for entry in record.played))
    if record.detail.get("sms"):
        lines.append(f"sms: {record.detail['sms']}")
    if result.jobs_added:
        lines.append(f"jobs added: {result.jobs_added}")
    ending = (
        f"error: {result.error}"
        if result.error is not None
        else f"call ended: {result.call_error}"
        if result.call_error is not None
        else f"hung up by: {result.hung_up_by}"
    )
    lines.append(ending)
    return "\n".join(lines) + "\n"


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


def test_every_valid_document_has_an_expected_run() -> None:
    for path in XML_FILES:
        if path.stem.startswith("valid_"):
            assert RUN_LINE.search(path.with_suffix(".expected").read_text()), path.name


@pytest.mark.parametrize("path", XML_FILES, ids=[path.stem for path in XML_FILES])
async def test_each_document_validates_and_runs_to_its_expected_result(
    path: Path, tmp_path: Path, service: TaskService
) -> None:
    expected_file = path.with_suffix(".expected")
    expected = expected_file.read_text() if expected_file.exists() else ""
    result = validation_result(path)
    if result.startswith("valid"):
        result += await run_result(load(path), digits_of(expected), tmp_path, service)
    if os.environ.get("RINGBACK_REGOLD"):
        expected_file.write_text(result)
        expected = result
    assert result == expected
    assert result.startswith("valid" if path.stem.startswith("valid_") else "error: ")
