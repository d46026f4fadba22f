"""SendFax documents are checked before anyone is dialled: when a job is added (exists and
converts, each file once, a few conversions at most per request) and before each dial (the
file exists); a path built from variables is left to the element at run time."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from support_fax import drawn_page

from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.domain.model import TaskKind
from ringback.domain.rows import InvalidInput
from ringback.engine.runners import run_attempt
from ringback.ivr import fax_check
from ringback.ivr.fax_check import FaxDocumentCheck, literal_fax_paths
from ringback.ivr.parse import parse
from ringback.service.job_inputs import check_fax_documents, parse_jobs
from ringback.telephony.sim import SimDialer
from support import attempt_context

CLIENT = 3


def _png() -> bytes:
    out = io.BytesIO()
    drawn_page(0, rows=200, width=400).save(out, format="PNG")
    return out.getvalue()


def _job(ivr: str, kind: str = "inline") -> dict[str, Any]:
    return {
        "type": "ivr_call",
        "data": {
            "calling_number": "0506868000",
            "called_number": "09012341234",
            "ivr_xml": {"type": kind, "data": ivr},
        },
    }


def _sendfax(path: str) -> str:
    return f"<IVR><Speak>hello</Speak><SendFax>{path}</SendFax></IVR>"


def test_only_sendfax_paths_without_variables_are_known_before_the_call() -> None:
    document = parse(
        "<IVR><SendFax>a.pdf</SendFax><SendFax>{{CalledNumber}}.pdf</SendFax>"
        "<ReceiveFax>in.tif</ReceiveFax><SendFax> docs/b.png </SendFax></IVR>"
    )
    assert literal_fax_paths(document) == [(1, "a.pdf"), (1, "docs/b.png")]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "SendFax cannot fax doc.pdf: it doesn't exist in the client's storage"),
        (b"%PDF-1.4 broken", "SendFax cannot fax doc.pdf: "),
        (b"plain words", "SendFax cannot fax doc.pdf: "),
    ],
)
async def test_a_job_whose_fax_document_cannot_be_faxed_is_refused_naming_the_field(
    tmp_path: Path, content: bytes | None, why: str
) -> None:
    storage = Storage(tmp_path)
    if content is not None:
        storage.write_bytes(CLIENT, "doc.pdf", content)
    jobs = parse_jobs([_job(_sendfax("ok.png")), _job(_sendfax("doc.pdf"))])
    storage.write_bytes(CLIENT, "ok.png", _png())
    with pytest.raises(InvalidInput) as caught:
        await check_fax_documents(storage, CLIENT, jobs)
    [detail] = caught.value.details
    assert detail["loc"] == [1, "data", "ivr_xml", "data"]
    assert detail["msg"].startswith("line 1: " + why), detail


async def test_a_good_document_and_a_path_from_variables_pass(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    storage.write_bytes(CLIENT, "ok.png", _png())
    storage.write_bytes(CLIENT, "menu.xml", _sendfax("ok.png").encode())
    jobs = parse_jobs(
        [
            _job(_sendfax("ok.png")),
            _job(_sendfax("{{CalledNumber}}.pdf")),
            _job("menu.xml", "storage"),
        ]
    )
    await check_fax_documents(storage, CLIENT, jobs)


async def test_a_storage_ivr_documents_fax_is_checked_too(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    storage.write_bytes(CLIENT, "menu.xml", _sendfax("gone.tif").encode())
    with pytest.raises(InvalidInput, match="problem"):
        await check_fax_documents(storage, CLIENT, parse_jobs([_job("menu.xml", "storage")]))


async def test_each_file_is_converted_once_and_no_more_than_the_cap_per_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = Storage(tmp_path)
    converted: list[Path] = []
    real = fax_check._convert

    def counting(path: Path) -> None:
        converted.append(path)
        real(path)

    monkeypatch.setattr(fax_check, "_convert", counting)
    names = [f"p{n}.png" for n in range(fax_check.MAX_FAX_CONVERSIONS + 2)]
    for name in names:
        storage.write_bytes(CLIENT, name, _png())
    storage.write_bytes(CLIENT, names[-1], b"not an image")  # past the cap: not converted
    check = FaxDocumentCheck(storage, CLIENT)
    for _ in range(3):  # 3 jobs naming the same files
        for name in names:
            assert await check.problem(parse(_sendfax(name))) is None
    assert [path.name for path in converted] == names[: fax_check.MAX_FAX_CONVERSIONS]
    # a missing file is still found past the cap
    assert await check.problem(parse(_sendfax("nope.tif"))) is not None


async def test_a_sendfax_file_deleted_after_the_job_was_added_fails_it_before_dialling(
    tmp_path: Path,
) -> None:
    dialer = SimDialer(FakeClock(), fast=True)
    ctx = attempt_context(
        TaskKind.IVR_CALL, _job(_sendfax("gone.tif"))["data"], dialer, Storage(tmp_path),
        client_id=CLIENT,
    )  # fmt: skip
    result = await run_attempt(ctx)
    assert not result.originated and not result.retryable
    assert result.comment == "line 1: Cannot execute SendFax. File gone.tif doesn't exist"
    assert ctx.calls == []
