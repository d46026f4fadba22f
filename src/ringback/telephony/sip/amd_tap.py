"""Answering-machine detection on a SIP call: the received audio fed to the detectors.

Right after answer the call's RTP session keeps the far end's audio (decoded to 16-bit PCM,
8 kHz, in sequence order, a lost packet as silence: :meth:`RtpSession.start_recording`); every
:data:`POLL_S` this reads what arrived since and feeds it, 20 ms frame by 20 ms frame, to an
:class:`~ringback.telephony.amd.AmdDetector` and a
:class:`~ringback.telephony.amd.BeepDetector`. The 20 ms RTP pacing is untouched: the
receive path only appends decoded samples, as for any recording. When no audio comes at all
the detection still ends: ``unknown`` (``too_long``) once the analysis time has passed in real
time.
"""

from __future__ import annotations

import asyncio

import numpy as np

from ringback.telephony.amd import FRAME_SAMPLES, AmdDetector, AmdSettings, BeepDetector
from ringback.telephony.amd_call import AmdOutcome
from ringback.telephony.base import CallError, CallNotSupported, ended_error
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.media import RtpSession

#: how often the received audio is read (two 20 ms frames)
POLL_S = 0.04
_FRAME_BYTES = FRAME_SAMPLES * 2
#: real time allowed beyond the audio time before the detection gives up (lost media)
_SLACK_S = 1.0


async def detect_on_sip_call(
    call: SipCall, settings: AmdSettings, *, wait_for_beep: bool, beep_timeout_s: float
) -> AmdOutcome:
    """Who answered ``call`` from its received audio (see the module docstring)."""
    action = "detect an answering machine"
    session = call.media
    if call.ended:
        raise ended_error(call.record, action)
    if not call.answered or session is None:
        raise CallError(f"cannot {action}: the call is not answered")
    if not isinstance(session, RtpSession):
        raise CallNotSupported(
            f"answering-machine detection is not supported on this media ({type(session).__name__})"
        )
    max_audio_s = settings.total_analysis_ms / 1000 + (beep_timeout_s if wait_for_beep else 0)
    session.start_recording(max_seconds=min(600.0, max_audio_s + 5.0))
    try:
        return await _run(call, session, settings, wait_for_beep, beep_timeout_s)
    finally:
        session.stop_recording()


async def _run(
    call: SipCall,
    session: RtpSession,
    settings: AmdSettings,
    wait_for_beep: bool,
    beep_timeout_s: float,
) -> AmdOutcome:
    amd, beep = AmdDetector(settings), BeepDetector(settings)
    loop = asyncio.get_running_loop()
    started = loop.time()
    read = 0  # bytes of the recording fed so far
    heard_ms = 0
    decision = None
    while True:
        await asyncio.sleep(POLL_S)  # real time on purpose: the far end's audio as it comes
        if call.ended:
            raise ended_error(call.record, "detect an answering machine")
        fresh = session.recorded_since(read)
        whole = len(fresh) - len(fresh) % _FRAME_BYTES
        read += whole
        samples = np.frombuffer(fresh[:whole], dtype="<i2")
        for at in range(0, samples.size, FRAME_SAMPLES):
            frame = samples[at : at + FRAME_SAMPLES]
            heard_ms += 20
            ended = beep.feed(frame)
            if decision is None:
                decision = amd.feed(frame)
                if decision is not None and not (
                    wait_for_beep and decision.answered_by == "machine"
                ):
                    return AmdOutcome(decision.answered_by, decision.cause, decision.ms)
            elif ended is not None:
                assert decision is not None
                return AmdOutcome(decision.answered_by, decision.cause, decision.ms, ended)
            if decision is not None and heard_ms - decision.ms >= beep_timeout_s * 1000:
                return AmdOutcome(decision.answered_by, decision.cause, decision.ms)
        elapsed = loop.time() - started
        if decision is None and elapsed >= settings.total_analysis_ms / 1000 + _SLACK_S:
            return AmdOutcome("unknown", "too_long", round(elapsed * 1000))  # no audio came
        if decision is not None and elapsed >= decision.ms / 1000 + beep_timeout_s + _SLACK_S:
            return AmdOutcome(decision.answered_by, decision.cause, decision.ms)
