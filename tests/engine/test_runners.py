"""One attempt of each task kind against the simulator: results, call records, events."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.domain.model import AttemptResult, EventType, FailedLeg, Leg, Outcome, TaskKind
from ringback.domain.tasks import CallbackTask, task_from_callback
from ringback.engine.context import AttemptContext
from ringback.engine.runners import run_attempt
from ringback.telephony.base import Call, CallError, CallRecord, OriginateRequest
from ringback.telephony.sim import SimCall, SimDialer, load_sim_rules
from support import attempt_context, make_wav, on_clock, settle

T = TypeVar("T")
CLIENT = 9
CALL_UUID = "attempt-call-uuid"

# numbers with a timeline of their own (on top of the built-in rules: ring 1 s, talk 3 s)
RULES = """
[[rules]]
number = "+1000001"
ring_seconds = 3

[[rules]]
number = "+1000002"
ring_seconds = 1

[[rules]]
number = "+1000003"
ring_seconds = 2

[[rules]]
number = "+1000009"
talk_seconds = 1

[[rules]]
number = "+2000005"
ring_seconds = 5
"""


# --- helpers ------------------------------------------------------------------------------


class NoSleepClock(FakeClock):
    async def sleep(self, seconds: float) -> None:
        raise AssertionError(f"clock.sleep({seconds}) called in fast mode")


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    storage = Storage(tmp_path / "storage")
    make_wav(storage.client_dir(CLIENT) / "audio" / "hello.wav", seconds=0.5)
    make_wav(storage.client_dir(CLIENT) / "audio" / "long.wav", seconds=5.0)
    return storage


@pytest.fixture
def sim(tmp_path: Path, clock: FakeClock) -> SimDialer:
    rules_path = tmp_path / "sim.toml"
    rules_path.write_text(RULES)
    return SimDialer(clock, load_sim_rules(rules_path))


@pytest.fixture
def fast_sim() -> SimDialer:
    return SimDialer(NoSleepClock(), fast=True)


def context(
    kind: TaskKind,
    payload: dict[str, Any],
    dialer: Any,
    storage: Storage,
    *,
    attempt: int = 1,
    ring_timeout_s: float = 30.0,
) -> AttemptContext:
    return attempt_context(
        kind, payload, dialer, storage, client_id=CLIENT, call_uuid=CALL_UUID, attempt=attempt,
        ring_timeout_s=ring_timeout_s,
    )  # fmt: skip


def msg_payload(called: str = "+15551234", audio: str = "audio/hello.wav") -> dict[str, Any]:
    return {"calling_number": "+15550000", "called_number": called, "audio_file": audio}


def ivr_payload(xml: str, called: str = "+15551234", source: str = "inline") -> dict[str, Any]:
    return {
        "calling_number": "+15550000",
        "called_number": called,
        "ivr_xml": {"type": source, "data": xml},
    }


def callback_payload(**fields: Any) -> dict[str, Any]:
    fields.setdefault("a_number", "+1000002")
    fields.setdefault("b_number", "+2000001")
    spec = CallbackTask(**fields)
    return task_from_callback(spec, datetime(2026, 1, 5, 12, 0)).payload


async def run(ctx: AttemptContext) -> AttemptResult:
    clock = ctx.clock
    if isinstance(clock, NoSleepClock):
        return await run_attempt(ctx)
    assert isinstance(clock, FakeClock)
    return await on_clock(clock, run_attempt(ctx))


def by_number(ctx: AttemptContext) -> dict[str, CallRecord]:
    return {record.to_number: record for record in ctx.calls}


def event_types(ctx: AttemptContext) -> list[EventType]:
    return [event_type for event_type, _ in ctx.progress]


# --- msg_call -----------------------------------------------------------------------------


async def test_msg_call_answered_plays_the_message_and_succeeds(
    fast_sim: SimDialer, storage: Storage
) -> None:
    ctx = context(TaskKind.MSG_CALL, msg_payload(), fast_sim, storage)
    result = await run(ctx)
    assert result == AttemptResult(
        success=True,
        outcome=Outcome.ANSWERED,
        sip_code=200,
        hangup_cause="NORMAL_CLEARING",
        comment="message played",
        call_uuid=CALL_UUID,
    )
    [record] = ctx.calls
    assert record.leg is Leg.MAIN
    assert (record.from_number, record.to_number) == ("+15550000", "+15551234")
    assert record.call_uuid == CALL_UUID
    assert record.played == [
        {
            "type": "play",
            "loop": 1,
            "seconds": 0.5,
            "file": "audio/hello.wav",  # the storage name, not the path
        }
    ]
    assert record.hangup_disposition == "send_bye"
    assert fast_sim.live_calls() == []


async def test_msg_call_timeline_on_the_fake_clock(
    sim: SimDialer, storage: Storage, clock: FakeClock
) -> None:
    start = clock.now()
    ctx = context(TaskKind.MSG_CALL, msg_payload(), sim, storage)
    assert (await run(ctx)).success
    [record] = ctx.calls
    assert record.ringing_at == start
    assert record.answered_at == start + timedelta(seconds=1)
    assert record.ended_at is not None
    assert record.billsec == pytest.approx(0.5, abs=0.11)  # the message, then ringback hangs up


async def test_msg_call_emits_answered_and_ended_events_with_the_leg_times(
    fast_sim: SimDialer, storage: Storage
) -> None:
    ctx = context(TaskKind.MSG_CALL, msg_payload(), fast_sim, storage)
    await run(ctx)
    assert event_types(ctx) == [EventType.CALL_ANSWERED, EventType.CALL_ENDED]
    answered, ended = (data for _, data in ctx.progress)
    record = ctx.calls[0]
    assert answered["leg_uuid"] == ended["leg_uuid"] == record.leg_uuid
    assert answered["call_uuid"] == CALL_UUID
    assert answered["leg"] == "main"
    assert answered["to_number"] == "+15551234"
    assert answered["outcome"] == "answered"
    assert answered["ended_at"] is None
    assert ended["ended_at"] == record.ended_at  # stored as ISO 8601 text
    assert ended["answered_at"] == record.answered_at
    assert (ended["sip_code"], ended["hangup_cause"]) == (200, "NORMAL_CLEARING")


@pytest.mark.parametrize(
    ("number", "outcome", "sip_code", "comment"),
    [
        ("+15550486", Outcome.BUSY, 486, "busy (SIP 486)"),
        ("+15550480", Outcome.NO_ANSWER, 480, "no_answer (SIP 480)"),
        ("+15550408", Outcome.NO_ANSWER, 408, "no_answer (SIP 408)"),
        ("+15550404", Outcome.INVALID_NUMBER, 404, "invalid_number (SIP 404)"),
        ("+15550603", Outcome.REJECTED, 603, "rejected (SIP 603)"),
        ("+15550503", Outcome.FAILED, 503, "failed (SIP 503)"),
    ],
)
async def test_msg_call_not_answered_reports_the_leg_outcome(
    fast_sim: SimDialer,
    storage: Storage,
    number: str,
    outcome: Outcome,
    sip_code: int,
    comment: str,
) -> None:
    ctx = context(TaskKind.MSG_CALL, msg_payload(called=number), fast_sim, storage)
    result = await run(ctx)
    assert (result.success, result.outcome, result.sip_code) == (False, outcome, sip_code)
    assert result.comment == comment
    assert result.originated and result.retryable
    assert result.hangup_cause == ctx.calls[0].hangup_cause
    assert ctx.calls[0].played == []
    assert event_types(ctx) == [EventType.CALL_ENDED]


async def test_msg_call_ring_timeout_ends_no_answer_487(
    sim: SimDialer, storage: Storage, clock: FakeClock
) -> None:
    ctx = context(
        TaskKind.MSG_CALL, msg_payload(called="+2000005"), sim, storage, ring_timeout_s=2.0
    )
    result = await run(ctx)
    assert (result.outcome, result.sip_code, result.comment) == (
        Outcome.NO_ANSWER,
        487,
        "no_answer (SIP 487)",
    )
    assert ctx.calls[0].hangup_disposition == "send_cancel"
    assert ctx.calls[0].duration_s == 2.0


async def test_msg_call_with_a_missing_audio_file_fails_without_dialling(
    fast_sim: SimDialer, storage: Storage
) -> None:
    ctx = context(TaskKind.MSG_CALL, msg_payload(audio="audio/none.wav"), fast_sim, storage)
    result = await run(ctx)
    assert result == AttemptResult(
        success=False,
        outcome=Outcome.FAILED,
        originated=False,
        retryable=False,
        comment="Cannot execute Play. File audio/none.wav doesn't exist",
        call_uuid=CALL_UUID,
    )
    assert fast_sim.originated == 0
    assert ctx.calls == [] and ctx.progress == []


async def test_msg_call_with_an_audio_path_outside_the_client_folder_fails_without_dialling(
    fast_sim: SimDialer, storage: Storage
) -> None:
    make_wav(storage.client_dir(CLIENT + 1) / "theirs.wav")
    ctx = context(
        TaskKind.MSG_CALL, msg_payload(audio=f"../{CLIENT + 1}/theirs.wav"), fast_sim, storage
    )
    result = await run(ctx)
    assert not result.originated and not result.retryable
    assert result.comment.startswith("Cannot execute Play. storage path")
    assert fast_sim.originated == 0


async def test_msg_call_callee_hanging_up_mid_message_is_not_a_success(
    sim: SimDialer, storage: Storage
) -> None:
    ctx = context(TaskKind.MSG_CALL, msg_payload(audio="audio/long.wav"), sim, storage)
    result = await run(ctx)
    assert (result.success, result.outcome) == (False, Outcome.ANSWERED)
    assert result.comment == "callee hung up during the message"
    assert result.retryable
    [record] = ctx.calls
    assert record.hangup_disposition == "recv_bye"
    assert record.billsec == 3.0


async def test_msg_call_whose_file_is_no_audio_fails_without_ringing_anyone(
    fast_sim: SimDialer, storage: Storage
) -> None:
    storage.write_bytes(CLIENT, "audio/notes.wav", b"not a wav")  # replaced after the add
    ctx = context(TaskKind.MSG_CALL, msg_payload(audio="audio/notes.wav"), fast_sim, storage)
    result = await run(ctx)
    assert (result.success, result.originated, result.retryable) == (False, False, False)
    assert result.comment.startswith(
        "Cannot execute Play. File audio/notes.wav: not an audio file ringback can play"
    )
    assert str(storage.root) not in result.comment  # the storage name, not the server path
    assert fast_sim.originated == 0 and ctx.calls == []


async def test_msg_call_whose_file_becomes_unplayable_after_the_check_is_not_retryable(
    fast_sim: SimDialer, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_wav(storage.resolve(CLIENT, "audio/notes.wav"))
    ctx = context(TaskKind.MSG_CALL, msg_payload(audio="audio/notes.wav"), fast_sim, storage)
    original = fast_sim.originate

    async def originate_then_spoil(request: OriginateRequest) -> Call:
        call = await original(request)
        storage.write_bytes(CLIENT, "audio/notes.wav", b"not a wav any more")  # while ringing
        return call

    monkeypatch.setattr(fast_sim, "originate", originate_then_spoil)
    result = await run(ctx)
    assert (result.success, result.outcome, result.retryable) == (False, Outcome.ANSWERED, False)
    assert result.comment.startswith("cannot play audio/notes.wav: ")
    assert str(storage.root) not in result.comment
    assert ctx.calls[0].hangup_disposition == "send_bye"


async def test_the_finish_comment_of_a_msg_call_whose_file_vanished_names_only_the_storage_name(
    fast_sim: SimDialer, storage: Storage
) -> None:
    make_wav(storage.resolve(CLIENT, "audio/gone.wav"))
    storage.resolve(CLIENT, "audio/gone.wav").unlink()  # deleted after the task was added
    ctx = context(TaskKind.MSG_CALL, msg_payload(audio="audio/gone.wav"), fast_sim, storage)
    result = await run(ctx)
    assert result.comment == "Cannot execute Play. File audio/gone.wav doesn't exist"
    assert str(storage.root) not in result.comment and not ctx.calls


async def test_invalid_payload_fails_without_dialling(
    fast_sim: SimDialer, storage: Storage
) -> None:
    ctx = context(TaskKind.MSG_CALL, {"calling_number": "nope"}, fast_sim, storage)
    result = await run(ctx)
    assert not result.originated and not result.retryable
    assert result.comment.startswith("invalid task payload: calling_number:")
    assert "called_number: missing" in result.comment


# --- ivr_call -----------------------------------------------------------------------------


IVR = """<IVR>
  <Play>audio/hello.wav</Play>
  <Speak voice="kal">Goodbye</Speak>
  <Hangup reason="busy"/>
</IVR>"""


async def test_ivr_call_runs_the_document_and_succeeds(
    fast_sim: SimDialer, storage: Storage
) -> None:
    ctx = context(TaskKind.IVR_CALL, ivr_payload(IVR), fast_sim, storage)
    result = await run(ctx)
    assert (result.success, result.outcome, result.comment) == (
        True,
        Outcome.ANSWERED,
        "IVR completed",
    )
    [record] = ctx.calls
    assert [entry["type"] for entry in record.played] == ["play", "speak"]
    assert record.hangup_cause == "USER_BUSY"


async def test_ivr_call_reads_a_document_from_client_storage(
    fast_sim: SimDialer, storage: Storage
) -> None:
    storage.write_bytes(CLIENT, "ivr/main.xml", IVR.encode())
    ctx = context(
        TaskKind.IVR_CALL, ivr_payload("ivr/main.xml", source="storage"), fast_sim, storage
    )
    assert (await run(ctx)).success


@pytest.mark.parametrize(
    ("payload", "comment"),
    [
        (
            ivr_payload("ivr/none.xml", source="storage"),
            "Cannot read the IVR document: File ivr/none.xml doesn't exist",
        ),
        (
            ivr_payload("<IVR>\n\n<Speak studio='x'>hi</Speak></IVR>"),
            "line 3: Element Speak does not support attribute studio",
        ),
        (
            ivr_payload('<!DOCTYPE IVR [<!ENTITY a "b">]><IVR/>'),
            "line 1: DOCTYPE and ENTITY declarations are not allowed",
        ),
        (
            ivr_payload("<IVR><Play>audio/none.wav</Play></IVR>"),
            "line 1: Cannot execute Play. File audio/none.wav doesn't exist",
        ),
    ],
)
async def test_ivr_call_that_cannot_run_fails_without_dialling(
    fast_sim: SimDialer, storage: Storage, payload: dict[str, Any], comment: str
) -> None:
    ctx = context(TaskKind.IVR_CALL, payload, fast_sim, storage)
    result = await run(ctx)
    assert (result.success, result.originated, result.retryable) == (False, False, False)
    assert result.comment == comment
    assert fast_sim.originated == 0


async def test_ivr_call_with_an_element_that_cannot_be_done_fails_when_it_is_reached(
    fast_sim: SimDialer, storage: Storage
) -> None:
    storage.write_bytes(CLIENT, "fax.tiff", b"II*\x00")
    xml = "<IVR><Speak>Hello</Speak>\n<SendFax>fax.tiff</SendFax><Speak>Never</Speak></IVR>"
    ctx = context(TaskKind.IVR_CALL, ivr_payload(xml), fast_sim, storage)
    result = await run(ctx)
    assert (result.success, result.outcome, result.retryable) == (False, Outcome.ANSWERED, False)
    message = (
        "Cannot execute SendFax. File fax.tiff cannot be faxed: "
        "not a TIFF, PDF or image format that can be read"
    )
    assert result.comment == f"line 2: {message}"
    assert [entry["text"] for entry in ctx.calls[0].played] == ["Hello"]
    assert ctx.calls[0].detail["ivr_trace"][-1] == f"line 2 error: {message}"


async def test_ivr_call_not_answered_reports_the_leg_outcome(
    fast_sim: SimDialer, storage: Storage
) -> None:
    ctx = context(TaskKind.IVR_CALL, ivr_payload(IVR, called="+15550486"), fast_sim, storage)
    result = await run(ctx)
    assert (result.outcome, result.comment) == (Outcome.BUSY, "busy (SIP 486)")


async def test_ivr_error_during_the_call_fails_the_task_without_retry(
    sim: SimDialer, storage: Storage, clock: FakeClock
) -> None:
    xml = "<IVR><Wait length='1'/><Play>audio/hello.wav</Play></IVR>"
    ctx = context(TaskKind.IVR_CALL, ivr_payload(xml), sim, storage)
    task = asyncio.ensure_future(run(ctx))
    await settle()
    clock.advance(1.5)  # answered at 1 s, waiting until 2 s: the file goes away meanwhile
    await settle()
    storage.resolve(CLIENT, "audio/hello.wav").unlink()
    result = await task
    assert (result.success, result.outcome, result.retryable) == (False, Outcome.ANSWERED, False)
    assert result.comment == "line 1: Cannot execute Play. File audio/hello.wav doesn't exist"
    assert ctx.calls[0].ended_at is not None
    assert sim.live_calls() == []


async def test_ivr_call_callee_hanging_up_mid_ivr_is_not_a_success(
    sim: SimDialer, storage: Storage
) -> None:
    xml = "<IVR><Speak>Hello</Speak><Wait length='10'/><Speak>Still there?</Speak></IVR>"
    ctx = context(TaskKind.IVR_CALL, ivr_payload(xml), sim, storage)
    result = await run(ctx)
    assert (result.success, result.outcome) == (False, Outcome.ANSWERED)
    assert result.comment == "callee hung up during the IVR"
    assert [entry["text"] for entry in ctx.calls[0].played] == ["Hello"]


# --- callback -----------------------------------------------------------------------------


async def test_callback_first_a_number_to_answer_wins_and_the_others_are_canceled(
    sim: SimDialer, storage: Storage, clock: FakeClock
) -> None:
    start = clock.now()
    payload = callback_payload(
        a_number="+1000001",  # rings 3 s
        b_number="+2000001",
        callback_params={"extended_a_numbers": ["+1000002", "+1000003"]},  # 1 s and 2 s
    )
    ctx = context(TaskKind.CALLBACK, payload, sim, storage)
    result = await run(ctx)
    assert (result.success, result.comment) == (True, "A and B connected")
    records = by_number(ctx)
    assert set(records) == {"+1000001", "+1000002", "+1000003", "+2000001"}
    winner, b = records["+1000002"], records["+2000001"]
    assert winner.answered_at == start + timedelta(seconds=1)
    for loser in (records["+1000001"], records["+1000003"]):
        assert (loser.outcome, loser.sip_code) == (Outcome.CANCELED, 487)
        assert (loser.hangup_cause, loser.hangup_disposition) == ("LOSE_RACE", "send_cancel")
        assert loser.ended_at == start + timedelta(seconds=1)
        assert loser.leg is Leg.A
    assert b.leg is Leg.B
    assert b.started_at == start + timedelta(seconds=1)
    assert winner.bridged_at == b.bridged_at == start + timedelta(seconds=2)
    assert (winner.bridged_with, b.bridged_with) == (b.leg_uuid, winner.leg_uuid)
    # A's talk time (3 s from 1 s) runs out first: A hangs up, ringback hangs up B
    assert winner.ended_at == b.ended_at == start + timedelta(seconds=4)
    assert (winner.hangup_disposition, b.hangup_disposition) == ("recv_bye", "send_bye")
    assert sim.live_calls() == []
    ended = [data["to_number"] for kind, data in ctx.progress if kind is EventType.CALL_ENDED]
    assert sorted(ended) == sorted(records)


async def test_callback_with_b_busy_fails_on_leg_b_and_hangs_up_a(
    fast_sim: SimDialer, storage: Storage
) -> None:
    ctx = context(TaskKind.CALLBACK, callback_payload(b_number="+2000486"), fast_sim, storage)
    result = await run(ctx)
    assert (result.success, result.failed_leg, result.outcome, result.sip_code) == (
        False,
        FailedLeg.B,
        Outcome.BUSY,
        486,
    )
    assert result.comment == "B leg: busy (SIP 486)"
    a = by_number(ctx)["+1000002"]
    assert (a.outcome, a.hangup_disposition) == (Outcome.ANSWERED, "send_bye")
    assert a.bridged_at is None


@pytest.mark.parametrize(
    ("a_numbers", "outcome"),
    [
        (["+1555404", "+1666404"], Outcome.INVALID_NUMBER),
        (["+1555404", "+1666486"], Outcome.BUSY),
        (["+1555603", "+1666480", "+1777503"], Outcome.NO_ANSWER),
        (["+1555503", "+1666603"], Outcome.REJECTED),
        (["+1555404", "+1666503"], Outcome.FAILED),
    ],
)
async def test_callback_with_no_a_answer_reports_the_best_a_outcome(
    fast_sim: SimDialer, storage: Storage, a_numbers: list[str], outcome: Outcome
) -> None:
    payload = callback_payload(
        a_number=a_numbers[0], callback_params={"extended_a_numbers": a_numbers[1:]}
    )
    ctx = context(TaskKind.CALLBACK, payload, fast_sim, storage)
    result = await run(ctx)
    assert (result.success, result.failed_leg, result.outcome) == (False, FailedLeg.A, outcome)
    assert result.comment.startswith(f"none of {len(a_numbers)} A numbers answered: {outcome}")
    assert sorted(by_number(ctx)) == sorted(a_numbers)  # B was never dialled
    assert fast_sim.originated == len(a_numbers)


async def test_callback_with_a_single_a_number_not_answering(
    fast_sim: SimDialer, storage: Storage
) -> None:
    ctx = context(TaskKind.CALLBACK, callback_payload(a_number="+1555480"), fast_sim, storage)
    result = await run(ctx)
    assert (result.failed_leg, result.comment) == (FailedLeg.A, "A leg: no_answer (SIP 480)")


async def test_callback_caller_ids_come_from_the_per_attempt_lists_first(
    fast_sim: SimDialer, storage: Storage
) -> None:
    payload = callback_payload(
        attempts_src_ani_numbers=["+1700", "+1701"],
        attempts_dst_ani_numbers=["+1800", "+1801"],
        callback_params={"caller_id_number": "+1900", "caller_id_name": "Acme"},
    )
    ctx = context(TaskKind.CALLBACK, payload, fast_sim, storage, attempt=2)
    await run(ctx)
    records = by_number(ctx)
    assert records["+1000002"].from_number == "+1701"
    assert records["+2000001"].from_number == "+1801"
    assert records["+2000001"].caller_id_name == "Acme"


async def test_callback_caller_ids_fall_back_to_caller_id_number_then_the_a_number(
    fast_sim: SimDialer, storage: Storage
) -> None:
    payload = callback_payload(
        attempts_src_ani_numbers=["+1700"], callback_params={"caller_id_number": "+1900"}
    )
    ctx = context(TaskKind.CALLBACK, payload, fast_sim, storage, attempt=2)
    await run(ctx)
    assert by_number(ctx)["+1000002"].from_number == "+1900"
    assert by_number(ctx)["+2000001"].from_number == "+1900"

    ctx = context(
        TaskKind.CALLBACK, callback_payload(), SimDialer(NoSleepClock(), fast=True), storage
    )
    await run(ctx)
    assert by_number(ctx)["+1000002"].from_number is None
    assert by_number(ctx)["+2000001"].from_number == "+1000002"


async def test_callback_sends_dst_dtmf_to_b_before_the_bridge(
    fast_sim: SimDialer, storage: Storage
) -> None:
    payload = callback_payload(callback_params={"dst_dtmf": "12w#"})
    ctx = context(TaskKind.CALLBACK, payload, fast_sim, storage)
    assert (await run(ctx)).success
    assert by_number(ctx)["+2000001"].played == [{"type": "dtmf_sent", "digits": "12w#"}]


async def test_callback_where_a_hangs_up_while_b_rings_cancels_b(
    sim: SimDialer, storage: Storage, clock: FakeClock
) -> None:
    start = clock.now()
    payload = callback_payload(a_number="+1000009", b_number="+2000005")  # A talks 1 s, B rings 5
    ctx = context(TaskKind.CALLBACK, payload, sim, storage)
    result = await run(ctx)
    assert (result.success, result.failed_leg) == (False, FailedLeg.A)
    assert result.comment == "A hung up before B answered"
    b = by_number(ctx)["+2000005"]
    assert (b.outcome, b.hangup_disposition) == (Outcome.CANCELED, "send_cancel")
    assert b.ended_at == start + timedelta(seconds=2)


async def test_callback_variables_reach_every_leg(
    fast_sim: SimDialer, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[OriginateRequest] = []
    original = fast_sim.originate

    async def spy(request: OriginateRequest) -> SimCall:
        seen.append(request)
        return await original(request)

    monkeypatch.setattr(fast_sim, "originate", spy)
    ctx = context(
        TaskKind.CALLBACK, callback_payload(variables={"crm_id": "42"}), fast_sim, storage
    )
    await run(ctx)
    assert [(r.leg, r.variables, r.call_uuid) for r in seen] == [
        (Leg.A, {"crm_id": "42"}, CALL_UUID),
        (Leg.B, {"crm_id": "42"}, CALL_UUID),
    ]


# --- failures of the runner itself --------------------------------------------------------


async def test_unexpected_error_becomes_a_failed_result_and_the_leg_is_hung_up(
    sim: SimDialer, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_play(
        self: SimCall, path: Path, *, loop: int = 1, name: str | None = None
    ) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(SimCall, "play", broken_play)
    ctx = context(TaskKind.MSG_CALL, msg_payload(), sim, storage)
    result = await run(ctx)
    assert (result.success, result.outcome) == (False, Outcome.FAILED)
    assert result.comment == "internal error: disk on fire"
    assert result.call_uuid == CALL_UUID
    [record] = ctx.calls
    assert record.hangup_disposition == "send_bye"
    assert sim.live_calls() == []
    assert event_types(ctx) == [EventType.CALL_ANSWERED, EventType.CALL_ENDED]


async def test_unexpected_error_after_a_legs_started_hangs_up_and_records_them_all(
    sim: SimDialer, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = sim.originate

    async def no_b_leg(request: OriginateRequest) -> SimCall:
        if request.leg is Leg.B:
            raise RuntimeError("no route")
        return await original(request)

    monkeypatch.setattr(sim, "originate", no_b_leg)
    payload = callback_payload(
        a_number="+1000001", callback_params={"extended_a_numbers": ["+1000002"]}
    )
    ctx = context(TaskKind.CALLBACK, payload, sim, storage)
    result = await run(ctx)
    assert result.comment == "internal error: no route"
    assert {record.to_number for record in ctx.calls} == {"+1000001", "+1000002"}
    assert all(record.ended_at is not None for record in ctx.calls)
    assert sim.live_calls() == []


async def test_dialer_refusing_to_originate_is_a_retryable_not_originated_failure(
    fast_sim: SimDialer, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def trunk_down(request: OriginateRequest) -> SimCall:
        raise CallError("trunk down")

    monkeypatch.setattr(fast_sim, "originate", trunk_down)
    ctx = context(TaskKind.MSG_CALL, msg_payload(), fast_sim, storage)
    result = await run(ctx)
    assert (result.success, result.originated, result.retryable) == (False, False, True)
    assert result.comment == "cannot call +15551234: trunk down"


async def test_cancelled_attempt_hangs_up_and_records_its_legs(
    sim: SimDialer, storage: Storage, clock: FakeClock
) -> None:
    ctx = context(TaskKind.MSG_CALL, msg_payload(audio="audio/long.wav"), sim, storage)
    task = asyncio.ensure_future(run_attempt(ctx))
    await settle()
    clock.advance(1.5)  # answered, playing
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [record] = ctx.calls
    assert record.ended_at == clock.now()
    assert record.hangup_disposition == "send_bye"
    assert sim.live_calls() == []
    assert clock.sleepers == 0
