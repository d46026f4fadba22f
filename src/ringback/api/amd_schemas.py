"""The answering-machine detection of a call leg, as the API and the webhooks show it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AmdOut(BaseModel):
    """Who answered the leg, as answering-machine detection found (the task's ``amd``
    policy); see docs/campaigns.md, "Answering-machine detection"."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"answered_by": "machine", "cause": "long_greeting", "amd_ms": 2160,
                 "beep_ms": 8180, "policy": "wait_for_beep"},
                {"answered_by": "human", "cause": "human", "amd_ms": 1580, "beep_ms": None,
                 "policy": "continue"},
            ]
        }
    )  # fmt: skip
    answered_by: Literal["human", "machine", "unknown"] = Field(
        description="human, machine (an answering machine or voicemail), or unknown (nothing "
        "said, or no decision within the analysis time)"
    )
    cause: str = Field(
        description="the rule that decided: human (a short greeting, then silence), "
        "long_greeting, max_words, max_word_length (machine), initial_silence, too_long "
        "(unknown); the simulator says simulated"
    )
    amd_ms: int = Field(description="milliseconds from answer to the decision")
    beep_ms: int | None = Field(
        None,
        description="milliseconds from answer to the end of the machine's beep (policy "
        "wait_for_beep); null: no beep heard, or not waited for",
    )
    policy: Literal["continue", "hangup", "wait_for_beep"] = Field(
        description="the task's amd policy that ran the detection"
    )
