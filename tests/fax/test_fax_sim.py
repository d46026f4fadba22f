"""The simulator faxes: SendFax and ReceiveFax run real T.30 sessions with an in-process fax
machine, on the simulator's calls and through the IVR (variables, stored TIFF and PDF)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from PIL import Image, ImageDraw
from support_fax import bitmaps, drawn_page, fax_document

from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.domain.model import TaskKind
from ringback.engine.runners import run_attempt
from ringback.ivr.parse import parse
from ringback.ivr.simulate import simulate_call
from ringback.telephony.base import CallError, OriginateRequest
from ringback.telephony.fax import documents
from ringback.telephony.sim import SimCall, SimDialer
from ringback.telephony.sim_rules import SimConfigError, SimRules, load_sim_rules
from support import attempt_context

T = TypeVar("T")
CLIENT = 7


async def dial(dialer: SimDialer, number: str = "+15550100") -> SimCall:
    return await dialer.originate(OriginateRequest(number, caller_id_number="+15550001"))


async def drive(clock: FakeClock, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``, moving the clock only while something sleeps on it (the fax is
    computed in a thread first, in real time)."""
    task = asyncio.ensure_future(awaitable)
    while not task.done():
        await asyncio.sleep(0.005)
        if clock.sleepers:
            clock.advance(0.5)
    return task.result()


async def test_fast_send_fax_is_a_real_session_and_takes_no_time(tmp_path: Path) -> None:
    clock = FakeClock()
    call = await dial(SimDialer(clock, fast=True))
    assert await call.wait_answer() is not None
    before = clock.now()
    document = fax_document(tmp_path / "out.tif", pages=2)
    result = await call.send_fax(document, header="ACME", ident="+15550009", name="out.pdf")
    assert (result.code, result.text, result.pages, result.bit_rate) == (0, "OK", 2, 14400)
    assert (result.local_ident, result.remote_ident, result.header) == (
        "+15550009", "+15550100", "ACME",
    )  # fmt: skip
    assert clock.now() == before
    assert call.record.played[-1] == {
        "type": "fax", "operation": "transmission", "file": "out.pdf", "pages": 2, "code": 0,
        "text": "OK", "seconds": result.audio_seconds,
    }  # fmt: skip


async def test_the_station_id_defaults_to_the_caller_id(tmp_path: Path) -> None:
    call = await dial(SimDialer(FakeClock(), fast=True))
    result = await call.send_fax(fax_document(tmp_path / "out.tif", pages=1))
    assert (result.local_ident, result.remote_ident) == ("+15550001", "+15550100")


async def test_fast_receive_fax_brings_a_real_page(tmp_path: Path) -> None:
    call = await dial(SimDialer(FakeClock(), fast=True))
    received = await call.receive_fax(60.0, ident="+15550001")
    result = received.result
    assert (result.code, result.pages, result.operation) == (0, 1, "reception")
    assert result.remote_ident == "+15550100"
    (tmp_path / "in.tif").write_bytes(received.tiff)
    [page] = documents.read_fax(tmp_path / "in.tif")
    assert page.width == documents.FAX_WIDTH
    assert round(page.info["dpi"][1]) == 196
    assert not np.array(page).all()  # there is something on it


async def test_a_reception_longer_than_its_timeout_fails_with_a_code() -> None:
    call = await dial(SimDialer(FakeClock(), fast=True))
    received = await call.receive_fax(3.0)
    assert received.result.code == 49
    assert received.result.text == "The call dropped prematurely"
    assert received.tiff == b""


async def test_no_fax_on_a_call_that_is_not_up(tmp_path: Path) -> None:
    clock = FakeClock()
    busy = await dial(SimDialer(clock, fast=True), number="+15550486")
    with pytest.raises(CallError):
        await busy.send_fax(tmp_path / "out.tif")
    with pytest.raises(CallError):
        await busy.receive_fax(10.0)


async def test_the_fax_takes_its_audio_time_and_the_machine_stays_on_the_line(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    call = await dial(SimDialer(clock, fast=False))  # the callee talks 3 s
    assert await drive(clock, call.wait_answer()) is not None
    answered_at = call.record.answered_at
    assert answered_at is not None
    result = await drive(clock, call.send_fax(fax_document(tmp_path / "out.tif", pages=1)))
    assert (result.code, result.pages) == (0, 1)
    assert result.audio_seconds > 3
    assert clock.now() - answered_at >= timedelta(seconds=result.audio_seconds)
    record = await drive(clock, call.wait_ended())
    assert record.hangup_disposition == "recv_bye"  # the fax machine hangs up after the fax
    assert record.ended_at is not None
    assert record.ended_at - answered_at < timedelta(seconds=result.audio_seconds + 1)


# --- through the IVR ---------------------------------------------------------------------


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def two_page_pdf() -> bytes:
    pages = [drawn_page(index, rows=1100, width=850).convert("L") for index in range(2)]
    out = io.BytesIO()
    pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:], resolution=100)
    return out.getvalue()


async def test_sendfax_converts_a_pdf_and_sets_the_dialects_variables(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "storage")
    storage.write_bytes(CLIENT, "docs/letter.pdf", two_page_pdf())
    xml = "<IVR><SendFax header='ACME Corp'>docs/letter.pdf</SendFax></IVR>"
    run, record = await simulate_call(
        parse(xml), FakeClock(), storage=storage, client_id=CLIENT, caller="0312345678"
    )
    assert run.ok, run.error
    assert run.fax == {
        "FaxOperation": "transmission", "FaxFilePath": "docs/letter.pdf", "FaxResultCode": "0",
        "FaxResultText": "OK", "FaxPageCount": "2",
    }  # fmt: skip
    [entry] = [entry for entry in record.played if entry["type"] == "fax"]
    assert (entry["file"], entry["pages"]) == ("docs/letter.pdf", 2)
    trace = [str(line) for line in run.trace]
    assert "line 1 SendFax: docs/letter.pdf (header 'ACME Corp')" in trace
    assert "line 1 SendFax: 2 page(s) to send" in trace
    assert any("code 0 (OK): 2 page(s), 14400 bit/s, ECM on, far station 0312345678" in line
               for line in trace)  # fmt: skip


async def test_the_seed_example_sends_its_tiff(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "storage")
    grey = Image.new("L", (1000, 1300), 255)
    ImageDraw.Draw(grey).rectangle((100, 100, 900, 300), outline=0, width=4)
    out = io.BytesIO()
    grey.save(out, format="TIFF", dpi=(120, 120))
    storage.write_bytes(CLIENT, "some_fax.tiff", out.getvalue())
    run, _ = await simulate_call(
        parse("<IVR><SendFax>some_fax.tiff</SendFax></IVR>"),
        FakeClock(), storage=storage, client_id=CLIENT,
    )  # fmt: skip
    assert run.ok, run.error
    assert (run.fax["FaxResultCode"], run.fax["FaxPageCount"]) == ("0", "1")


@pytest.mark.parametrize(
    ("name", "pdf"),
    [("in/today.tiff", "received_faxes/in/today.pdf"), ("x.pdf", "received_faxes/x.pdf.pdf")],
)
async def test_receivefax_stores_the_tiff_and_a_pdf_beside_it(
    tmp_path: Path, name: str, pdf: str
) -> None:
    storage = Storage(tmp_path / "storage")
    run, record = await simulate_call(
        parse(f"<IVR><ReceiveFax>{name}</ReceiveFax></IVR>"),
        FakeClock(), storage=storage, client_id=CLIENT, caller="0312345678",
    )  # fmt: skip
    assert run.ok, run.error
    relpath = f"received_faxes/{name}"
    assert run.fax == {
        "FaxOperation": "reception", "FaxFilePath": relpath, "FaxResultCode": "0",
        "FaxResultText": "OK", "FaxPageCount": "1",
    }  # fmt: skip
    tiff = storage.resolve(CLIENT, relpath)
    [page] = bitmaps(tiff)
    assert page.shape[1] == documents.FAX_WIDTH
    assert storage.resolve(CLIENT, pdf).read_bytes().startswith(b"%PDF-")
    [entry] = [entry for entry in record.played if entry["type"] == "fax"]
    assert (entry["operation"], entry["file"], entry["pages"]) == ("reception", relpath, 1)


async def test_sendfax_of_an_image_goes_through(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "storage")
    storage.write_bytes(CLIENT, "logo.png", png(drawn_page(0, rows=300, width=600)))
    run, _ = await simulate_call(
        parse("<IVR><SendFax>logo.png</SendFax><Speak>after</Speak></IVR>"),
        FakeClock(), storage=storage, client_id=CLIENT,
    )  # fmt: skip
    assert run.ok, run.error
    assert run.fax["FaxResultCode"] == "0"


# --- through the engine: the seed's ivr_call ---------------------------------------------


async def test_the_seeds_ivr_call_succeeds_with_its_pages_in_the_call_record(
    tmp_path: Path,
) -> None:
    storage = Storage(tmp_path / "storage")
    tiff = io.BytesIO()
    drawn_page(0, rows=400, width=800).save(tiff, format="TIFF", dpi=(100, 100))
    storage.write_bytes(CLIENT, "some_fax.tiff", tiff.getvalue())
    payload = {
        "calling_number": "+15550000",
        "called_number": "+15551234",
        "ivr_xml": {"type": "inline", "data": "<IVR><SendFax>some_fax.tiff</SendFax></IVR>"},
    }
    dialer = SimDialer(FakeClock(), fast=True)
    ctx = attempt_context(TaskKind.IVR_CALL, payload, dialer, storage, client_id=CLIENT)
    result = await run_attempt(ctx)
    assert result.success, result.comment
    [record] = ctx.calls
    [fax] = [entry for entry in record.played if entry["type"] == "fax"]
    assert (fax["operation"], fax["file"], fax["pages"], fax["code"]) == (
        "transmission", "some_fax.tiff", 1, 0,
    )  # fmt: skip


def _rules(tmp_path: Path, fax: str) -> SimRules:
    path = tmp_path / "rules.toml"
    path.write_text(f'[[rules]]\nsuffix = "0329"\nfax = "{fax}"\n')
    return load_sim_rules(path)


@pytest.mark.parametrize("mode", ["silent", "drops"])
async def test_a_number_rule_makes_a_sent_fax_fail_with_a_t30_code(
    tmp_path: Path, mode: str
) -> None:
    dialer = SimDialer(FakeClock(), fast=True, rules=_rules(tmp_path, mode))
    call = await dial(dialer, "+15550329")
    result = await call.send_fax(fax_document(tmp_path / "out.tif", pages=2))
    assert result.code != 0 and result.text != "OK"
    assert result.pages < 2
    other = await dial(dialer, "+15550100")  # no rule: its fax machine answers
    assert (await other.send_fax(fax_document(tmp_path / "ok.tif", pages=1))).code == 0


async def test_a_silent_far_machine_times_out_waiting_for_initial_communication(
    tmp_path: Path,
) -> None:
    dialer = SimDialer(FakeClock(), fast=True, rules=_rules(tmp_path, "silent"))
    received = await (await dial(dialer, "+15550329")).receive_fax(120.0)
    assert received.result.code != 0 and received.result.pages == 0
    assert received.tiff == b""


def test_a_bad_fax_mode_in_the_rules_is_named(tmp_path: Path) -> None:
    with pytest.raises(SimConfigError, match="fax must be one of answers, silent, drops"):
        _rules(tmp_path, "maybe")
