"""Answering-machine detection on a live call, whatever its backend.

:func:`detect_answering_machine` runs right after answer: the sip backend feeds the far end's
audio to :class:`~ringback.telephony.amd.AmdDetector` (``sip/amd_tap.py``); the simulator
answers from its number rules (``answered_by``, ``beep_after_s``). With ``wait_for_beep`` a
machine's beep is awaited too (at most ``beep_timeout_s`` after the decision).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ringback.telephony.amd_settings import AmdSettings
from ringback.telephony.base import Call, CallNotSupported


@dataclass(frozen=True, slots=True)
class AmdOutcome:
    """Who answered (human / machine / unknown), why, when (ms after answer) and when the
    beep ended (ms after answer; None: none heard or not waited for)."""

    answered_by: str
    cause: str
    amd_ms: int
    beep_ms: int | None = None


@runtime_checkable
class MachineDetecting(Protocol):
    """A call that can tell who answered it (the simulator's calls)."""

    async def detect_answering_machine(
        self, settings: AmdSettings, *, wait_for_beep: bool, beep_timeout_s: float
    ) -> AmdOutcome: ...


async def detect_answering_machine(
    call: Call, settings: AmdSettings, *, wait_for_beep: bool, beep_timeout_s: float
) -> AmdOutcome:
    """Who answered ``call`` (answered, up); CallError if it ends meanwhile, CallNotSupported
    when its backend cannot tell."""
    if isinstance(call, MachineDetecting):
        return await call.detect_answering_machine(
            settings, wait_for_beep=wait_for_beep, beep_timeout_s=beep_timeout_s
        )
    from ringback.telephony.sip.amd_tap import detect_on_sip_call  # the sip stack, on demand
    from ringback.telephony.sip.call import SipCall

    if isinstance(call, SipCall):
        return await detect_on_sip_call(
            call, settings, wait_for_beep=wait_for_beep, beep_timeout_s=beep_timeout_s
        )
    raise CallNotSupported(
        f"answering-machine detection is not supported on this call ({type(call).__name__})"
    )
