"""Answering-machine detection over SIP: a ringback callee on 127.0.0.1 answers and plays a
voicemail greeting with a beep, a short human greeting (espeak-ng and sox) or nothing, and
the caller's detection hears it over RTP; and a msg_call task through the engine's runner
with the hangup policy."""

from __future__ import annotations

import contextlib
from pathlib import Path

from support_media import require_program
from support_sip import bounded, sip_dialer

from ringback.client_files import Storage
from ringback.domain.model import Outcome, TaskKind
from ringback.engine.runners import run_attempt
from ringback.telephony.amd import AmdSettings
from ringback.telephony.amd_call import detect_answering_machine
from ringback.telephony.amd_corpus import human, machine
from ringback.telephony.base import CallError, OriginateRequest
from ringback.telephony.sip.call import SipCall
from support import attempt_context, make_wav


@bounded(90)
async def test_over_rtp_a_voicemail_is_a_machine_with_its_beep_a_greeting_human_silence_unknown(
    tmp_path: Path,
) -> None:
    require_program("espeak-ng", "espeak-ng")
    require_program("sox", "sox")
    recordings = {"8801": machine(0, tmp_path), "8802": human(1, tmp_path)}

    async def play(call: SipCall, called: str, calling: str) -> None:
        await call.answer()
        with contextlib.suppress(CallError):  # the caller hangs up once it knows
            if called in recordings:
                await call.play(recordings[called].path)
            await call.wait(20.0)  # 8803: a line that answers and says nothing

    async with sip_dialer(5060, on_inbound=play) as callee, sip_dialer(callee.port) as caller:
        found = {}
        for number in (*recordings, "8803"):
            call = await caller.originate(
                OriginateRequest(to_number=number, caller_id_number="4930123456")
            )
            assert await call.wait_answer() is Outcome.ANSWERED
            found[number] = await detect_answering_machine(
                call, AmdSettings(), wait_for_beep=True, beep_timeout_s=15.0
            )
            await call.hangup()
            await call.wait_ended()
    assert found["8801"].answered_by == "machine"
    beep_end = recordings["8801"].beep_end_s
    assert beep_end is not None and found["8801"].beep_ms is not None
    assert abs(found["8801"].beep_ms - beep_end * 1000) <= 250
    assert (found["8802"].answered_by, found["8802"].beep_ms) == ("human", None)
    assert found["8803"].answered_by == "unknown"
    assert found["8803"].amd_ms <= AmdSettings().total_analysis_ms + 1500


@bounded(90)
async def test_a_msg_call_task_with_the_hangup_policy_hangs_up_on_a_voicemail_over_sip(
    tmp_path: Path,
) -> None:
    require_program("espeak-ng", "espeak-ng")
    require_program("sox", "sox")
    voicemail = machine(2, tmp_path)
    storage = Storage(tmp_path / "storage")
    make_wav(storage.client_dir(7) / "audio" / "offer.wav", seconds=0.5)

    async def play(call: SipCall, called: str, calling: str) -> None:
        await call.answer()
        with contextlib.suppress(CallError):
            await call.play(voicemail.path)

    async with sip_dialer(5060, on_inbound=play) as callee, sip_dialer(callee.port) as caller:
        payload = {"calling_number": "4930123456", "called_number": "8810",
                   "audio_file": "audio/offer.wav", "amd": "hangup"}  # fmt: skip
        ctx = attempt_context(TaskKind.MSG_CALL, payload, caller, storage, client_id=7)
        result = await run_attempt(ctx)
    assert (result.success, result.retryable, result.comment) == (
        False, False, "answering machine",
    )  # fmt: skip
    [record] = ctx.calls
    assert record.amd is not None and record.amd["answered_by"] == "machine"
    assert record.amd["policy"] == "hangup" and record.played == []
    assert record.hangup_disposition == "send_bye"
