"""Answering-machine detection (AMD): the per-task policy and what a call's record says.

A ``msg_call`` or ``ivr_call`` task's ``amd`` policy decides what happens once the call is
answered (docs/campaigns.md, "Answering-machine detection"):

* ``off`` (default): no detection;
* ``continue``: detect, then play the message / run the IVR knowing the result (the IVR's
  ``AnsweredBy`` variable);
* ``hangup``: detect; on a machine hang up: the task finishes ``failed`` with the comment
  ``answering machine`` and is not retried; a human or unknown goes on as for ``continue``;
* ``wait_for_beep``: detect; on a machine wait for its beep (at most ``BEEP_TIMEOUT_S``), then
  play the message / run the IVR, so that it is recorded whole.

A leg that ran the detection keeps its result in its record's ``amd``:
``{"answered_by", "cause", "amd_ms", "beep_ms", "policy"}`` (:data:`AMD_FIELDS`).
"""

from __future__ import annotations

from typing import Any

AMD_POLICIES = ("off", "continue", "hangup", "wait_for_beep")
ANSWERED_BY = ("human", "machine", "unknown")
#: the longest wait for a machine's beep (wait_for_beep), from the decision on
BEEP_TIMEOUT_S = 30.0
#: the comment of a task whose call a machine answered under the ``hangup`` policy
MACHINE_COMMENT = "answering machine"


#: what a record's ``amd`` holds: who answered (human / machine / unknown), why (the rule
#: that decided: human, long_greeting, max_words, max_word_length, initial_silence,
#: too_long), when (ms after answer), when the beep ended (ms after answer; None: none heard
#: or not waited for) and the task's policy
AMD_FIELDS: tuple[str, ...] = ("answered_by", "cause", "amd_ms", "beep_ms", "policy")


def amd_result(
    answered_by: str, cause: str, amd_ms: int, beep_ms: int | None, policy: str
) -> dict[str, Any]:
    """A record's ``amd`` value."""
    if answered_by not in ANSWERED_BY:
        raise ValueError(f"answered_by must be one of {', '.join(ANSWERED_BY)}")
    return {"answered_by": answered_by, "cause": cause, "amd_ms": amd_ms, "beep_ms": beep_ms,
            "policy": policy}  # fmt: skip


def answered_by_variable(amd: dict[str, Any] | None) -> str:
    """The IVR's ``AnsweredBy`` value: the result, or empty when no detection ran."""
    return "" if amd is None else str(amd.get("answered_by") or "")
