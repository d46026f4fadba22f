"""Ringback to ringback: an IVR faxes over T.38, plays a prompt, then faxes again on the same
call (docs/fax.md, "Back to audio after a T.38 fax"). The rule checked: a fax step that ran on
T.38 ends with the call back on audio (the side whose step ran on T.38 re-INVITEs back; both
sides do here, and the glare is resolved by RFC 3261 §14.1's waits), so the prompt reaches the
far end's RTP stream and the second SendFax switches to T.38 again.

Real time: two one-page faxes of ~20 s each.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support_media import best_correlation, chirp, floats, write_wav
from support_sip import bounded, request, sip_dialer
from tests.fax.support_fax import bitmaps, fax_document

from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.domain.model import Outcome
from ringback.ivr.runner import IvrEnvironment, IvrSource, run_ivr
from ringback.telephony.sip.call import SipCall

pytestmark = pytest.mark.slow  # real-time fax sessions

CLIENT = 1
HEADER_ROWS = 64  # at most, above each page (tests/sip/test_sip_fax.py: assert_same_pages)
IVR = (
    '<IVR><SendFax header="ringback">out.tif</SendFax><Play>chirp.wav</Play>'
    '<SendFax header="ringback">out.tif</SendFax></IVR>'
)


@bounded(180)
async def test_rule_after_a_t38_sendfax_the_call_is_back_on_audio_a_play_is_heard_and_a_second_sendfax_works(  # noqa: E501
    tmp_path: Path,
) -> None:
    storage = Storage(tmp_path / "storage")
    document = fax_document(tmp_path / "out.tif", pages=1)
    storage.write_bytes(CLIENT, "out.tif", document.read_bytes())
    prompt = chirp(0.6)
    wav = write_wav(tmp_path / "chirp.wav", [floats(prompt * 3)], 8000, 2)  # three chirps
    storage.write_bytes(CLIENT, "chirp.wav", wav.read_bytes())
    far: dict[str, Any] = {}

    async def receive_twice(call: SipCall, _called: str, _calling: str) -> None:
        """The far ringback: ReceiveFax, listen for the prompt, ReceiveFax again."""
        try:
            await call.answer()
            far["first"] = await call.receive_fax(90)
            far["first_channel"] = call.t38.channel
            session = call.media
            assert session is not None
            session.start_recording(30)
            async with asyncio.timeout(30):
                while best_correlation(prompt, session.recorded_pcm()) < 0.9:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            far["heard"] = best_correlation(prompt, session.recorded_pcm())
            session.stop_recording()
            far["second"] = await call.receive_fax(90)
        except Exception as exc:  # reported by the test below
            far["error"] = repr(exc)
        finally:
            await call.hangup()
            far["done"] = True

    async with (
        sip_dialer(5060, on_inbound=receive_twice, t38="accept") as receiver,
        sip_dialer(receiver.port, t38="offer") as sender,
    ):
        call = await sender.originate(request("5550300"))
        assert isinstance(call, SipCall)
        assert await call.wait_answer() is Outcome.ANSWERED
        env = IvrEnvironment(variables={}, now=SystemClock().now, storage=storage, client_id=CLIENT)
        run = await run_ivr(call, IvrSource("xml", IVR), env=env)
        record = await call.wait_ended()
        async with asyncio.timeout(30):
            while "done" not in far:  # noqa: ASYNC110 (the far handler's end)
                await asyncio.sleep(0.05)
    assert "error" not in far, far.get("error")
    assert run.ok, (run.error, run.call_error)
    faxes = [p for p in record.played if p["type"] == "fax"]
    assert [(f["code"], f["pages"], f["transport"]) for f in faxes] == [(0, 1, "t38")] * 2
    assert [p["type"] for p in record.played] == ["fax", "play", "fax"]
    assert far["first_channel"] is None  # the far end's fax step ended back on audio
    assert far["heard"] >= 0.9  # the prompt reached the far end's RTP stream
    received = [far["first"], far["second"]]
    assert [(r.result.code, r.result.pages, r.result.transport) for r in received] == [
        (0, 1, "t38")
    ] * 2
    tiffs = []
    for index, fax in enumerate(received):
        tiffs.append(tmp_path / f"in{index}.tif")
        tiffs[-1].write_bytes(fax.tiff)
    for one, two in zip(bitmaps(tiffs[0]), bitmaps(tiffs[1]), strict=True):
        # the same document twice, below the header line (its time may differ)
        assert one.shape == two.shape and np.array_equal(one[HEADER_ROWS:], two[HEADER_ROWS:])
    # both T.38 sessions of the sending side, each in a switch of its own
    assert len(record.detail["fax_t38"]) == 2
    t38 = record.detail["t38"]
    assert t38["switched"] == "offered" and t38["left"] in (
        "back to audio (our re-INVITE)",
        "the far end offered audio",
    )
