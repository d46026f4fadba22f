"""A task's answering-machine detection policy (``amd``) on the simulator: the number rules
say who answers (``answered_by``) and when a machine's beep ends (``beep_after_s``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.domain.model import AttemptResult, EventType, Outcome, TaskKind
from ringback.engine.context import AttemptContext
from ringback.engine.runners import run_attempt
from ringback.telephony.sim import SimDialer, load_sim_rules
from support import attempt_context, make_wav, on_clock

CLIENT = 9
RULES = """
[[rules]]
number = "+1000100"
answered_by = "machine"
beep_after_s = 6.0
talk_seconds = 60

[[rules]]
number = "+1000101"
answered_by = "human"
talk_seconds = 60

[[rules]]
number = "+1000102"
answered_by = "machine"
talk_seconds = 60
"""


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    storage = Storage(tmp_path / "storage")
    make_wav(storage.client_dir(CLIENT) / "audio" / "hello.wav", seconds=0.5)
    return storage


@pytest.fixture
def sim(tmp_path: Path, clock: FakeClock) -> SimDialer:
    rules_path = tmp_path / "sim.toml"
    rules_path.write_text(RULES)
    return SimDialer(clock, load_sim_rules(rules_path))


def msg(called: str, amd: str) -> dict[str, Any]:
    return {"calling_number": "+15550000", "called_number": called,
            "audio_file": "audio/hello.wav", "amd": amd}  # fmt: skip


async def attempt(
    kind: TaskKind, payload: dict[str, Any], sim: SimDialer, storage: Storage
) -> tuple[AttemptContext, AttemptResult]:
    ctx = attempt_context(kind, payload, sim, storage, client_id=CLIENT, call_uuid="c-amd")
    assert isinstance(sim.clock, FakeClock)
    result = await on_clock(sim.clock, run_attempt(ctx))
    return ctx, result


async def test_hangup_policy_ends_a_machine_call_as_failed_answering_machine_not_retried(
    sim: SimDialer, storage: Storage
) -> None:
    ctx, result = await attempt(TaskKind.MSG_CALL, msg("+1000102", "hangup"), sim, storage)
    assert (result.success, result.retryable, result.comment) == (
        False, False, "answering machine",
    )  # fmt: skip
    (record,) = ctx.calls
    assert record.played == []  # the message was not played to the machine
    assert record.amd == {"answered_by": "machine", "cause": "simulated", "amd_ms": 2000,
                          "beep_ms": None, "policy": "hangup"}  # fmt: skip
    ended = [data for kind, data in ctx.progress if kind is EventType.CALL_ENDED]
    assert ended[0]["amd"]["answered_by"] == "machine"  # the call.ended webhook says so


async def test_hangup_policy_plays_the_message_to_a_human(sim: SimDialer, storage: Storage) -> None:
    ctx, result = await attempt(TaskKind.MSG_CALL, msg("+1000101", "hangup"), sim, storage)
    assert result.success and result.comment == "message played"
    (record,) = ctx.calls
    assert record.amd is not None and record.amd["answered_by"] == "human"
    assert len(record.played) == 1


async def test_wait_for_beep_plays_the_message_once_the_beep_is_over(
    sim: SimDialer, storage: Storage
) -> None:
    ctx, result = await attempt(TaskKind.MSG_CALL, msg("+1000100", "wait_for_beep"), sim, storage)
    assert result.success and result.outcome is Outcome.ANSWERED
    (record,) = ctx.calls
    assert record.amd is not None and record.amd["beep_ms"] == 6000
    assert record.answered_at is not None and record.ended_at is not None
    # the message (0.5 s) started when the beep ended, 6 s after answer
    assert record.ended_at - record.answered_at >= timedelta(seconds=6.5)


async def test_off_policy_runs_no_detection(sim: SimDialer, storage: Storage) -> None:
    ctx, result = await attempt(TaskKind.MSG_CALL, msg("+1000100", "off"), sim, storage)
    assert result.success
    assert ctx.calls[0].amd is None


async def test_continue_policy_gives_the_ivr_its_answered_by_variable(
    sim: SimDialer, storage: Storage
) -> None:
    xml = "<IVR><Speak>{{AnsweredBy}}</Speak></IVR>"
    payload: dict[str, Any] = {"calling_number": "+15550000", "called_number": "+1000102",
               "ivr_xml": {"type": "inline", "data": xml}, "amd": "continue"}  # fmt: skip
    ctx, result = await attempt(TaskKind.IVR_CALL, payload, sim, storage)
    assert result.success, result.comment
    (record,) = ctx.calls
    assert record.played[0]["text"] == "machine"
    assert record.amd is not None and record.amd["policy"] == "continue"
