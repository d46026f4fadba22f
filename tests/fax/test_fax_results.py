"""A call's fax everywhere an attempt reports: the call record's ``fax`` (with the storage
names of a received fax), the task's finish comment and result, and the ``call.ended`` event
that webhooks carry. Real T.30 sessions on the simulator (fast mode)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

from PIL import Image
from support_fax import drawn_page

from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.domain.model import EventType, TaskKind
from ringback.engine.runners import run_attempt
from ringback.ivr.parse import parse
from ringback.ivr.simulate import simulate_call
from ringback.telephony.base import OriginateRequest
from ringback.telephony.fax import documents
from ringback.telephony.sim import SimDialer
from ringback.telephony.sim_rules import load_sim_rules
from support import attempt_context

CLIENT = 7
SEED_IVR = "<IVR><SendFax>some_fax.tiff</SendFax></IVR>"


def _storage_with_tiff(tmp_path: Path) -> Storage:
    storage = Storage(tmp_path / "storage")
    tiff = io.BytesIO()
    drawn_page(0, rows=400, width=800).save(tiff, format="TIFF", dpi=(100, 100))
    storage.write_bytes(CLIENT, "some_fax.tiff", tiff.getvalue())
    return storage


def _payload(called: str = "+15551234", ivr: str = SEED_IVR) -> dict[str, Any]:
    return {
        "calling_number": "+15550000",
        "called_number": called,
        "ivr_xml": {"type": "inline", "data": ivr},
    }


def _dialer(tmp_path: Path, fax: str | None = None) -> SimDialer:
    if fax is None:
        return SimDialer(FakeClock(), fast=True)
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[[rules]]\nsuffix = "0329"\nfax = "{fax}"\n')
    return SimDialer(FakeClock(), fast=True, rules=load_sim_rules(rules))


async def test_a_sent_fax_is_the_call_records_fax_and_names_the_finish_comment(
    tmp_path: Path,
) -> None:
    storage = _storage_with_tiff(tmp_path)
    ctx = attempt_context(
        TaskKind.IVR_CALL, _payload(), _dialer(tmp_path), storage, client_id=CLIENT
    )
    result = await run_attempt(ctx)
    assert result.success and result.comment == "fax sent: 1 page"
    [record] = ctx.calls
    assert record.fax is not None
    assert {k: record.fax[k] for k in ("operation", "file", "code", "text", "pages")} == {
        "operation": "transmission", "file": "some_fax.tiff", "code": 0, "text": "OK",
        "pages": 1,
    }  # fmt: skip
    assert record.fax["bit_rate"] == 14400 and record.fax["ecm"] is True
    assert record.fax["seconds"] > 0 and (record.fax["tiff"], record.fax["pdf"]) == (None, None)
    [ended] = [data for kind, data in ctx.progress if kind is EventType.CALL_ENDED]
    assert ended["fax"] == record.fax  # what webhooks of call.ended carry


async def test_a_failed_fax_fails_the_attempt_with_its_t30_code_and_may_be_retried(
    tmp_path: Path,
) -> None:
    storage = _storage_with_tiff(tmp_path)
    dialer = _dialer(tmp_path, "silent")
    ctx = attempt_context(
        TaskKind.IVR_CALL, _payload("+15550329"), dialer, storage, client_id=CLIENT
    )
    result = await run_attempt(ctx)
    assert not result.success and result.retryable
    assert result.comment == "fax failed: 2 Timed out waiting for initial communication"
    [record] = ctx.calls
    assert record.fax is not None and (record.fax["code"], record.fax["pages"]) == (2, 0)


async def test_an_ivr_without_a_fax_still_completes_as_before(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "storage")
    ivr = "<IVR><Speak>hello</Speak></IVR>"
    ctx = attempt_context(
        TaskKind.IVR_CALL, _payload(ivr=ivr), _dialer(tmp_path), storage, client_id=CLIENT
    )
    result = await run_attempt(ctx)
    assert result.success and result.comment == "IVR completed"
    assert ctx.calls[0].fax is None


async def test_an_ivr_error_after_a_fax_keeps_the_error_and_names_the_fax(tmp_path: Path) -> None:
    storage = _storage_with_tiff(tmp_path)
    # a path from a variable: found missing only when the element runs, after the fax
    ivr = "<IVR><SendFax>some_fax.tiff</SendFax><Play>gone{{CalledNumber}}.wav</Play></IVR>"
    ctx = attempt_context(
        TaskKind.IVR_CALL, _payload(ivr=ivr), _dialer(tmp_path), storage, client_id=CLIENT
    )
    result = await run_attempt(ctx)
    assert not result.success and not result.retryable
    assert result.comment.endswith("; fax sent: 1 page"), result.comment
    assert "Cannot execute Play. File gone+15551234.wav doesn't exist" in result.comment


async def test_a_received_fax_names_its_stored_tiff_and_pdf_in_the_call_record(
    tmp_path: Path,
) -> None:
    storage = Storage(tmp_path / "storage")
    run, record = await simulate_call(
        parse("<IVR><ReceiveFax>in/today.tif</ReceiveFax></IVR>"),
        FakeClock(), storage=storage, client_id=CLIENT, caller="0312345678",
    )  # fmt: skip
    assert run.ok, run.error
    assert record.fax is not None
    assert (record.fax["operation"], record.fax["code"], record.fax["pages"]) == (
        "reception", 0, 1,
    )  # fmt: skip
    assert record.fax["tiff"] == record.fax["file"] == "received_faxes/in/today.tif"
    assert record.fax["pdf"] == "received_faxes/in/today.pdf"
    assert storage.exists(CLIENT, record.fax["tiff"]) and storage.exists(CLIENT, record.fax["pdf"])


async def test_a_reception_that_brought_nothing_names_no_stored_file(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "storage")
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nsuffix = "0329"\nfax = "silent"\n')
    _, record = await simulate_call(
        parse("<IVR><ReceiveFax>x.tif</ReceiveFax></IVR>"),
        FakeClock(), storage=storage, client_id=CLIENT, caller="+15550329",
        sim_rules=load_sim_rules(rules),
    )  # fmt: skip
    assert record.fax is not None and record.fax["code"] != 0
    assert (record.fax["tiff"], record.fax["pdf"]) == (None, None)


# --- the simulator's incompatible far machine (a real T.30 session) -------------------------


async def test_an_incompatible_far_machine_refuses_a_fine_document_with_t30_code_11(
    tmp_path: Path,
) -> None:
    storage = _storage_with_tiff(tmp_path)
    ctx = attempt_context(
        TaskKind.IVR_CALL, _payload("+15550329"), _dialer(tmp_path, "incompatible"), storage,
        client_id=CLIENT,
    )  # fmt: skip
    result = await run_attempt(ctx)
    assert not result.success and result.retryable
    assert result.comment == "fax failed: 11 Far end cannot receive at the resolution of the image"
    [record] = ctx.calls
    assert record.fax is not None and (record.fax["code"], record.fax["pages"]) == (11, 0)


async def test_an_incompatible_far_machine_sends_a_normal_page_at_4800_without_ecm(
    tmp_path: Path,
) -> None:
    dialer = _dialer(tmp_path, "incompatible")
    call = await dialer.originate(OriginateRequest("+15550329", caller_id_number="+15550001"))
    received = await call.receive_fax(120.0)
    assert received.result.code == 0 and received.result.pages == 1
    assert (received.result.bit_rate, received.result.ecm) == (4800, False)
    with Image.open(io.BytesIO(received.tiff)) as page:
        assert round(page.info["dpi"][1]) == documents.Y_DPI["normal"]


async def test_a_fax_machine_hanging_up_after_a_good_fax_is_a_success_not_a_hang_up(
    tmp_path: Path,
) -> None:
    """The far machine hangs up once the fax is done (its talk time is over): elements after
    SendFax find the call gone, yet the fax went through: success, not tried again."""
    storage = _storage_with_tiff(tmp_path)
    clock = FakeClock()
    ivr = "<IVR><SendFax>some_fax.tiff</SendFax><Speak>thank you</Speak></IVR>"
    dialer = SimDialer(clock, fast=False)  # the callee talks 3 s: less than the fax
    ctx = attempt_context(TaskKind.IVR_CALL, _payload(ivr=ivr), dialer, storage, client_id=CLIENT)
    task = asyncio.ensure_future(run_attempt(ctx))
    while not task.done():  # move the clock only while something sleeps on it
        await asyncio.sleep(0.005)
        if clock.sleepers:
            clock.advance(0.5)
    result = task.result()
    [record] = ctx.calls
    assert record.hangup_disposition == "recv_bye"
    assert result.success and result.comment == "fax sent: 1 page"
