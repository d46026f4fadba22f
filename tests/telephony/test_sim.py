"""The simulator dialer: number rules, the leg timeline on a FakeClock, media, bridge, fast mode."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from ringback.clock import FakeClock
from ringback.domain.model import Leg, Outcome
from ringback.telephony.base import CallError, OriginateRequest
from ringback.telephony.sim import SimCall, SimDialer, wav_seconds
from ringback.telephony.sim_rules import SimConfigError, SimDefaults, SimRules, load_sim_rules
from support import make_wav, on_clock, settle

T = TypeVar("T")


# --- helpers ------------------------------------------------------------------------------


def rules_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sim.toml"
    path.write_text(text)
    return path


def request(number: str, **kwargs: object) -> OriginateRequest:
    return OriginateRequest(to_number=number, caller_id_number="+15550000", **kwargs)  # type: ignore[arg-type]


class NoSleepClock(FakeClock):
    async def sleep(self, seconds: float) -> None:
        raise AssertionError(f"clock.sleep({seconds}) called in fast mode")


async def answered(dialer: SimDialer, number: str = "+15551234") -> SimCall:
    call = await dialer.originate(request(number))
    outcome = await on_clock(dialer.clock, call.wait_answer())  # type: ignore[arg-type]
    assert outcome is Outcome.ANSWERED
    return call


# --- number rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "outcome", "sip_code", "cause"),
    [
        ("+15551234", Outcome.ANSWERED, 200, None),
        ("+15550486", Outcome.BUSY, 486, "USER_BUSY"),
        ("+15550480", Outcome.NO_ANSWER, 480, "NO_USER_RESPONSE"),
        ("+15550408", Outcome.NO_ANSWER, 408, "RECOVERY_ON_TIMER_EXPIRE"),
        ("+15550404", Outcome.INVALID_NUMBER, 404, "UNALLOCATED_NUMBER"),
        ("+15550603", Outcome.REJECTED, 603, "CALL_REJECTED"),
        ("+15550503", Outcome.FAILED, 503, "NORMAL_TEMPORARY_FAILURE"),
    ],
)
async def test_builtin_rules_fail_numbers_ending_in_a_sip_code_and_answer_the_rest(
    number: str, outcome: Outcome, sip_code: int, cause: str | None
) -> None:
    call = await SimDialer(FakeClock(), fast=True).originate(request(number))
    assert await call.wait_answer() is outcome
    record = call.record
    assert record.outcome is outcome
    assert record.sip_code == sip_code
    assert record.hangup_cause == cause
    if outcome is not Outcome.ANSWERED:
        assert record.hangup_disposition == "recv_refuse"
        assert record.ended_at == record.started_at


def test_builtin_defaults_ring_one_second_and_talk_three() -> None:
    assert load_sim_rules(None).defaults == SimDefaults(ring_seconds=1.0, talk_seconds=3.0, dtmf="")


def test_user_rules_are_tried_first_in_file_order_and_the_first_match_decides(
    tmp_path: Path,
) -> None:
    rules = load_sim_rules(
        rules_file(
            tmp_path,
            """
[[rules]]
prefix = "+3361"
sip_code = 603

[[rules]]
prefix = "+33"
ring_seconds = 7

[[rules]]
number = "+15550486"
sip_code = 200
""",
        )
    )
    assert rules.behaviour_for("+33612340486").sip_code == 603  # first user rule, not "486"
    assert rules.behaviour_for("+33700000486").sip_code == 200  # second rule decides
    assert rules.behaviour_for("+33700000486").ring_seconds == 7.0
    assert rules.behaviour_for("+15550486").sip_code == 200  # exact number beats builtin suffix
    assert rules.behaviour_for("+15551486").sip_code == 486  # builtin rules still apply


def test_fields_a_rule_leaves_out_come_from_the_merged_defaults(tmp_path: Path) -> None:
    rules = load_sim_rules(
        rules_file(
            tmp_path,
            """
[defaults]
talk_seconds = 60
dtmf = "1#"

[[rules]]
suffix = "77"
ring_seconds = 0.5
""",
        )
    )
    assert rules.defaults == SimDefaults(ring_seconds=1.0, talk_seconds=60.0, dtmf="1#")
    behaviour = rules.behaviour_for("+1555077")
    assert (behaviour.sip_code, behaviour.ring_seconds, behaviour.talk_seconds, behaviour.dtmf) == (
        200,
        0.5,
        60.0,
        "1#",
    )
    assert rules.behaviour_for("+1555486").talk_seconds == 60.0


def test_pattern_rule_must_match_the_whole_number(tmp_path: Path) -> None:
    rules = load_sim_rules(
        rules_file(tmp_path, '[[rules]]\npattern = "\\\\+44[0-9]{3}"\nsip_code = 480\n')
    )
    assert rules.behaviour_for("+44123").sip_code == 480
    assert rules.behaviour_for("+441234").sip_code == 200


def test_sip_uri_is_matched_on_its_user_part() -> None:
    assert load_sim_rules(None).behaviour_for("sip:1486@example.com").sip_code == 486


@pytest.mark.parametrize(
    ("text", "rule_number", "problem"),
    [
        ("[[rules]\nsuffix = 1", None, "not valid TOML"),
        ("[calls]\nx = 1\n", None, "unknown key(s) calls"),
        ("[defaults]\nring = 1\n", None, "unknown key(s) ring in [defaults]"),
        (
            '[[rules]]\nsuffix = "1"\n\n[[rules]]\nsuffix = "2"\ncolour = "red"\n',
            2,
            "unknown key(s) colour",
        ),
        ('[[rules]]\nsuffix = "1"\nprefix = "2"\n', 1, "exactly one of"),
        ("[[rules]]\nsip_code = 486\n", 1, "found none"),
        ('[[rules]]\npattern = "(unclosed"\n', 1, "not a valid regular expression"),
        ('[[rules]]\nsuffix = "1"\nsip_code = 302\n', 1, "sip_code 302"),
        ('[[rules]]\nsuffix = "1"\nsip_code = "486"\n', 1, "sip_code must be an integer"),
        ('[[rules]]\nsuffix = "1"\nring_seconds = -1\n', 1, "ring_seconds must be between"),
        ('[[rules]]\nsuffix = "1"\ndtmf = "1x"\n', 1, "dtmf '1x'"),
        ('[[rules]]\nsuffix = ""\n', 1, "suffix must be a non-empty string"),
    ],
)
def test_bad_rules_file_raises_config_error_naming_file_rule_and_problem(
    tmp_path: Path, text: str, rule_number: int | None, problem: str
) -> None:
    path = rules_file(tmp_path, text)
    with pytest.raises(SimConfigError) as caught:
        load_sim_rules(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert problem in message
    assert caught.value.rule_number == rule_number
    if rule_number is not None:
        assert f"[[rules]] #{rule_number}" in message


def test_missing_rules_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(SimConfigError, match="cannot read the file"):
        load_sim_rules(tmp_path / "nope.toml")


# --- the leg timeline ---------------------------------------------------------------------


async def test_record_has_a_fresh_leg_uuid_and_the_request_call_uuid() -> None:
    dialer = SimDialer(FakeClock(), fast=True)
    first = await dialer.originate(request("+15551234", call_uuid="attempt-1", leg=Leg.A))
    second = await dialer.originate(request("+15551234", call_uuid="attempt-1"))
    assert first.record.call_uuid == second.record.call_uuid == "attempt-1"
    assert first.record.leg_uuid != second.record.leg_uuid
    assert len(first.record.leg_uuid) == 36
    assert first.record.leg is Leg.A
    assert first.record.from_number == "+15550000"


async def test_answered_leg_rings_then_talks_then_the_callee_hangs_up(clock: FakeClock) -> None:
    start = clock.now()
    dialer = SimDialer(clock)
    call = await dialer.originate(request("+15551234"))
    assert call.record.started_at == start
    assert call.record.ringing_at == start
    assert call.record.answered_at is None
    assert await on_clock(clock, call.wait_answer()) is Outcome.ANSWERED
    assert call.record.answered_at == start + timedelta(seconds=1)

    record = await on_clock(clock, call.wait_ended())
    assert record.ended_at == start + timedelta(seconds=4)
    assert record.duration_s == 4.0
    assert record.billsec == 3.0
    assert (record.outcome, record.sip_code) == (Outcome.ANSWERED, 200)
    assert (record.hangup_cause, record.hangup_disposition) == ("NORMAL_CLEARING", "recv_bye")


async def test_record_stamps_events_when_they_were_due_even_if_the_clock_jumps(
    clock: FakeClock,
) -> None:
    start = clock.now()
    call = await SimDialer(clock).originate(request("+15551234"))
    clock.advance(100)
    record = call.record
    assert record.answered_at == start + timedelta(seconds=1)
    assert record.ended_at == start + timedelta(seconds=4)


async def test_failing_leg_rings_for_ring_seconds_then_fails(clock: FakeClock) -> None:
    start = clock.now()
    call = await SimDialer(clock).originate(request("+15550603"))
    assert call.record.ringing_at == start  # a decline comes while ringing
    assert await on_clock(clock, call.wait_answer()) is Outcome.REJECTED
    assert call.record.ended_at == start + timedelta(seconds=1)
    assert call.record.billsec == 0.0


async def test_busy_and_invalid_legs_never_ring(clock: FakeClock) -> None:
    dialer = SimDialer(clock, fast=True)
    for number in ("+15550486", "+15550404", "+15550503"):
        assert (await dialer.originate(request(number))).record.ringing_at is None


async def test_ring_timeout_shorter_than_ring_time_ends_no_answer_487_send_cancel(
    clock: FakeClock, tmp_path: Path
) -> None:
    rules = load_sim_rules(rules_file(tmp_path, "[defaults]\nring_seconds = 10\n"))
    start = clock.now()
    call = await SimDialer(clock, rules).originate(request("+15551234", ring_timeout_s=2.5))
    assert await on_clock(clock, call.wait_answer()) is Outcome.NO_ANSWER
    record = call.record
    assert record.ended_at == start + timedelta(seconds=2.5)
    assert (record.sip_code, record.hangup_disposition) == (487, "send_cancel")
    assert record.hangup_cause == "NO_ANSWER"
    assert record.answered_at is None


async def test_ring_timeout_equal_to_ring_time_still_answers(clock: FakeClock) -> None:
    call = await SimDialer(clock).originate(request("+15551234", ring_timeout_s=1.0))
    assert await on_clock(clock, call.wait_answer()) is Outcome.ANSWERED


async def test_hangup_while_ringing_is_a_cancel(clock: FakeClock) -> None:
    call = await SimDialer(clock).originate(request("+15551234"))
    clock.advance(0.5)
    await call.hangup()
    record = call.record
    assert (record.outcome, record.sip_code) == (Outcome.CANCELED, 487)
    assert (record.hangup_cause, record.hangup_disposition) == ("ORIGINATOR_CANCEL", "send_cancel")
    assert record.ended_at == record.started_at + timedelta(seconds=0.5)


async def test_hangup_wakes_a_pending_wait_answer(clock: FakeClock) -> None:
    call = await SimDialer(clock).originate(request("+15551234"))
    waiter = asyncio.ensure_future(call.wait_answer())
    await settle()
    await call.hangup("LOSE_RACE")
    await settle()
    assert waiter.done()
    assert waiter.result() is Outcome.CANCELED
    assert call.record.hangup_cause == "LOSE_RACE"
    assert clock.sleepers == 0


async def test_hangup_after_answer_sends_bye_and_is_idempotent(clock: FakeClock) -> None:
    call = await answered(SimDialer(clock))
    clock.advance(1)
    await call.hangup()
    ended_at = call.record.ended_at
    clock.advance(1)
    await call.hangup("USER_BUSY")
    record = call.record
    assert (record.hangup_cause, record.hangup_disposition) == ("NORMAL_CLEARING", "send_bye")
    assert record.ended_at == ended_at
    assert (await call.wait_ended()) is record


# --- media --------------------------------------------------------------------------------


async def test_play_records_file_loop_and_wav_seconds_and_takes_that_long(
    clock: FakeClock, tmp_path: Path
) -> None:
    wav = make_wav(tmp_path / "hello.wav", seconds=0.5)
    call = await answered(SimDialer(clock))
    before = clock.now()
    await on_clock(clock, call.play(wav, loop=2), step=0.05)
    assert call.record.played == [{"type": "play", "file": wav.name, "loop": 2, "seconds": 1.0}]
    assert (clock.now() - before).total_seconds() == pytest.approx(1.0, abs=0.051)
    assert call.record.ended_at is None


async def test_play_of_a_file_that_is_not_a_wav_raises_cannot_play(
    clock: FakeClock, tmp_path: Path
) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("hello")
    call = await answered(SimDialer(clock, fast=True))
    with pytest.raises(CallError, match=r"^cannot play notes\.wav: ") as raised:
        await call.play(text)
    with pytest.raises(CallError, match=r"^cannot play missing\.wav: file does not") as missing:
        await call.play(tmp_path / "missing.wav")
    for problem in (raised.value, missing.value):  # the server's folders are never shown
        assert str(tmp_path) not in str(problem)


def test_wav_length_cache_notices_a_rewritten_file(tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "a.wav", seconds=0.5)
    assert wav_seconds(wav) == 0.5
    make_wav(wav, seconds=1.5)
    stat = wav.stat()
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert wav_seconds(wav) == 1.5


async def test_callee_hanging_up_mid_play_ends_the_leg_and_raises_far_end_hung_up(
    clock: FakeClock, tmp_path: Path
) -> None:
    wav = make_wav(tmp_path / "long.wav", seconds=2.0)
    rules = load_sim_rules(rules_file(tmp_path, "[defaults]\ntalk_seconds = 1.5\n"))
    call = await answered(SimDialer(clock, rules))
    answered_at = call.record.answered_at
    assert answered_at is not None
    with pytest.raises(CallError, match="far end hung up"):
        await on_clock(clock, call.play(wav))
    record = call.record
    assert record.ended_at == answered_at + timedelta(seconds=1.5)
    assert record.hangup_disposition == "recv_bye"
    assert record.billsec == 1.5
    assert record.played[0]["seconds"] == 2.0


async def test_speak_records_text_language_voice_and_an_estimated_length(
    clock: FakeClock,
) -> None:
    call = await answered(SimDialer(clock))
    before = clock.now()
    await on_clock(clock, call.speak("Hello there", language="en", voice="kal"), step=0.02)
    assert call.record.played == [
        {
            "type": "speak",
            "text": "Hello there",
            "language": "en",
            "voice": "kal",
            "loop": 1,
            "seconds": 0.66,
        }
    ]
    assert (clock.now() - before).total_seconds() == pytest.approx(0.66, abs=0.021)


async def test_wait_takes_clock_time_and_fails_when_the_callee_hangs_up(clock: FakeClock) -> None:
    call = await answered(SimDialer(clock))
    await on_clock(clock, call.wait(2.0))
    with pytest.raises(CallError, match="far end hung up"):
        await on_clock(clock, call.wait(2.0))


async def test_operations_need_an_answered_leg(clock: FakeClock, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "a.wav")
    dialer = SimDialer(clock)
    ringing = await dialer.originate(request("+15551234"))
    with pytest.raises(CallError, match="not answered"):
        await ringing.play(wav)
    with pytest.raises(CallError, match="not answered"):
        await ringing.send_dtmf("1")
    busy = await dialer.originate(request("+15550486"))
    clock.advance(2)
    with pytest.raises(CallError, match="not answered"):
        await busy.speak("hi")
    up = await answered(dialer)
    await up.hangup()
    with pytest.raises(CallError, match="has ended"):
        await up.wait(1)


async def test_collect_digits_follows_the_callee_dtmf_script(
    clock: FakeClock, tmp_path: Path
) -> None:
    rules = load_sim_rules(rules_file(tmp_path, '[defaults]\ntalk_seconds = 60\ndtmf = "12#,9"\n'))
    call = await answered(SimDialer(clock, rules))
    before = clock.now()
    assert await call.collect_digits(max_digits=5, timeout_s=3) == "12"
    assert clock.now() == before  # the finish key ends the collection at once
    assert await on_clock(clock, call.collect_digits(max_digits=5, timeout_s=3)) == ""
    assert (clock.now() - before).total_seconds() == pytest.approx(3.0, abs=0.11)
    assert await on_clock(clock, call.collect_digits(max_digits=5, timeout_s=3)) == "9"
    assert await on_clock(clock, call.collect_digits(max_digits=5, timeout_s=3)) == ""
    assert call.record.dtmf_received == "129"


async def test_collect_digits_stops_at_max_digits_and_keeps_the_rest(tmp_path: Path) -> None:
    rules = load_sim_rules(rules_file(tmp_path, '[defaults]\ndtmf = "12345#"\n'))
    call = await answered(SimDialer(NoSleepClock(), rules, fast=True))
    assert await call.collect_digits(max_digits=2, timeout_s=5) == "12"
    assert await call.collect_digits(max_digits=9, timeout_s=5) == "345"


async def test_send_dtmf_is_recorded(clock: FakeClock) -> None:
    call = await answered(SimDialer(clock, fast=True))
    await call.send_dtmf("12w#")
    assert call.record.played == [{"type": "dtmf_sent", "digits": "12w#"}]


# --- bridge -------------------------------------------------------------------------------


async def test_bridge_lasts_until_the_first_callee_talk_time_runs_out(
    clock: FakeClock, tmp_path: Path
) -> None:
    rules = load_sim_rules(
        rules_file(
            tmp_path,
            """
[[rules]]
number = "+1001"
talk_seconds = 10

[[rules]]
number = "+1002"
talk_seconds = 3
""",
        )
    )
    start = clock.now()
    dialer = SimDialer(clock, rules)
    a_call = await answered(dialer, "+1001")  # answers at +1, would talk until +11
    b_call = await answered(dialer, "+1002")  # dialled at +1, answers at +2, talks until +5
    bridged_at = clock.now()
    await on_clock(clock, a_call.bridge(b_call))
    a, b = a_call.record, b_call.record
    assert a.bridged_at == b.bridged_at == bridged_at
    assert (a.bridged_with, b.bridged_with) == (b.leg_uuid, a.leg_uuid)
    assert b.ended_at == a.ended_at == start + timedelta(seconds=5)
    assert (b.hangup_disposition, a.hangup_disposition) == ("recv_bye", "send_bye")
    assert a.bridged_duration_s == pytest.approx(5 - (bridged_at - start).total_seconds())


async def test_bridge_in_fast_mode_returns_at_once_and_ends_both_legs() -> None:
    dialer = SimDialer(NoSleepClock(), fast=True)
    a_call = await dialer.originate(request("+1001"))
    b_call = await dialer.originate(request("+1002"))
    await a_call.bridge(b_call)
    assert a_call.record.bridged_with == b_call.record.leg_uuid
    assert (a_call.record.hangup_disposition, b_call.record.hangup_disposition) == (
        "recv_bye",
        "send_bye",
    )
    assert dialer.live_calls() == []


async def test_bridge_refuses_a_leg_that_is_not_answered(clock: FakeClock) -> None:
    dialer = SimDialer(clock)
    a_call = await answered(dialer)
    ringing = await dialer.originate(request("+1002"))
    with pytest.raises(CallError, match="not answered"):
        await a_call.bridge(ringing)
    assert a_call.record.bridged_at is None


async def test_hanging_up_one_bridged_leg_hangs_up_the_other(clock: FakeClock) -> None:
    dialer = SimDialer(clock)
    a_call = await answered(dialer)
    b_call = await answered(dialer, "+1002")
    bridge = asyncio.ensure_future(a_call.bridge(b_call))
    await settle()
    clock.advance(0.5)
    await b_call.hangup()
    await settle()
    assert bridge.done()
    assert a_call.record.ended_at == b_call.record.ended_at == clock.now()
    assert a_call.record.hangup_disposition == "send_bye"


# --- fast mode and the dialer -------------------------------------------------------------


async def test_fast_mode_never_sleeps_on_the_clock_nor_creates_tasks(tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "a.wav")
    rules = load_sim_rules(rules_file(tmp_path, '[defaults]\ndtmf = "1"\n'))
    dialer = SimDialer(NoSleepClock(), rules, fast=True)
    tasks_before = len(asyncio.all_tasks())
    call = await dialer.originate(request("+15551234"))
    assert call.record.answered_at == call.record.started_at
    assert await call.wait_answer() is Outcome.ANSWERED
    await call.play(wav, loop=3)
    await call.speak("a long text that would take a while")
    await call.wait(30)
    assert await call.collect_digits(max_digits=3, timeout_s=10) == "1"
    assert await call.collect_digits(max_digits=3, timeout_s=10) == ""
    other = await dialer.originate(request("+15555678"))
    await call.bridge(other)
    await call.wait_ended()
    busy = await dialer.originate(request("+15550486"))
    assert await busy.wait_answer() is Outcome.BUSY
    assert len(asyncio.all_tasks()) == tasks_before
    assert call.record.played[0]["seconds"] == 1.5
    assert call.record.duration_s == 0.0


async def test_fast_mode_wait_ended_on_a_live_leg_ends_it_as_the_callee() -> None:
    call = await SimDialer(NoSleepClock(), fast=True).originate(request("+15551234"))
    record = await call.wait_ended()
    assert record.hangup_disposition == "recv_bye"


async def test_dialer_tracks_live_legs_and_close_hangs_them_up(clock: FakeClock) -> None:
    dialer = SimDialer(clock)
    up = await answered(dialer, "+15555678")
    await dialer.originate(request("+15550486"))
    clock.advance(1.0)  # the busy leg has failed by now
    ringing = await dialer.originate(request("+15551234"))
    assert dialer.originated == 3
    assert {call.record.leg_uuid for call in dialer.live_calls()} == {
        ringing.record.leg_uuid,
        up.record.leg_uuid,
    }
    await dialer.close()
    assert dialer.live_calls() == []
    assert ringing.record.outcome is Outcome.CANCELED
    assert up.record.hangup_cause == "SYSTEM_SHUTDOWN"


def test_rules_can_be_built_in_code() -> None:
    rules = SimRules(defaults=SimDefaults(ring_seconds=0.0))
    assert rules.behaviour_for("+15550486").sip_code == 200  # no built-in rules here


async def test_a_leg_whose_clock_passes_its_answer_before_its_sleep_begins_is_answered() -> None:
    """The engine waits for an answer while a test moves the fake clock: the leg's sleep, a task
    of its own, begins a turn of the loop later and must still end at the answer's moment."""
    clock = FakeClock()
    call = await SimDialer(clock).originate(request("+15551234"))  # rings 1 s
    waiting = asyncio.ensure_future(call.wait_answer())
    await asyncio.sleep(0)  # waiting now: its sleeper is made, not yet begun
    clock.advance(2)
    assert await asyncio.wait_for(waiting, timeout=5) is Outcome.ANSWERED
