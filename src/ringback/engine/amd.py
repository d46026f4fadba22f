"""A task's answering-machine detection policy applied to its answered call (docs/campaigns.md,
"Answering-machine detection"; ``ringback.domain.amd``)."""

from __future__ import annotations

import logging
from typing import Any

from ringback.domain.amd import BEEP_TIMEOUT_S, amd_result
from ringback.telephony.amd_call import detect_answering_machine
from ringback.telephony.amd_settings import AmdSettings
from ringback.telephony.base import Call, CallNotSupported

log = logging.getLogger(__name__)

#: the detector's parameters (Asterisk's amd.conf defaults: ``ringback.telephony.amd``)
SETTINGS = AmdSettings()


async def screen_answer(call: Call, policy: str) -> dict[str, Any] | None:
    """Run the detection ``policy`` asks for on the answered ``call`` and note the result in
    its record's ``amd`` (also returned); None for ``off``. CallError when the call ends
    meanwhile. A backend that cannot detect gives ``unknown``, its cause saying so."""
    if policy == "off":
        return None
    try:
        outcome = await detect_answering_machine(
            call,
            SETTINGS,
            wait_for_beep=policy == "wait_for_beep",
            beep_timeout_s=BEEP_TIMEOUT_S,
        )
    except CallNotSupported as exc:
        log.warning("answering-machine detection: %s", exc)
        result = amd_result("unknown", str(exc), 0, None, policy)
    else:
        result = amd_result(
            outcome.answered_by, outcome.cause, outcome.amd_ms, outcome.beep_ms, policy
        )
    call.record.amd = result
    return result


def hangs_up(amd: dict[str, Any] | None) -> bool:
    """Whether the call ends here: a machine answered under the ``hangup`` policy."""
    return amd is not None and amd["policy"] == "hangup" and amd["answered_by"] == "machine"
