"""decide(): the task state machine, as pure logic."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ringback.domain.decide import NOT_ORIGINATED_PAUSE, WORKER_LOST, decide
from ringback.domain.model import (
    AttemptResult,
    EventType,
    FailedLeg,
    FinishResult,
    Outcome,
    RetryState,
    TaskKind,
    TaskStatus,
)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
FIXED_10S = {"type": "fixed", "delay": 10_000, "jitter": 0.0}


def state(
    *,
    kind: TaskKind = TaskKind.MSG_CALL,
    attempt: int = 1,
    tries: int = 0,
    caller_tries: int = 0,
    max_tries: int = 3,
    max_caller_tries: int = 0,
    backoff: dict[str, object] | None = None,
    caller_pause_s: float = 0.0,
) -> RetryState:
    return RetryState(
        kind, attempt, tries, caller_tries, max_tries, max_caller_tries,
        FIXED_10S if backoff is None else backoff, caller_pause_s, 2,
    )  # fmt: skip


def busy(**kw: object) -> AttemptResult:
    return AttemptResult(success=False, outcome=Outcome.BUSY, sip_code=486, **kw)  # type: ignore[arg-type]


def test_success_finishes_the_task_and_spends_one_try() -> None:
    decision = decide(state(), AttemptResult(True, Outcome.ANSWERED), NOW, random.Random())
    assert decision.status is TaskStatus.FINISHED
    assert decision.finish_result is FinishResult.SUCCESS
    assert (decision.tries_used, decision.attempt, decision.run_at) == (1, 1, None)
    [event] = decision.events
    assert event.type is EventType.TASK_FINISHED and event.data["result"] == "success"


def test_a_failed_try_with_tries_left_is_delayed_by_the_backoff() -> None:
    decision = decide(state(), busy(), NOW, random.Random())
    assert decision.status is TaskStatus.DELAYED
    assert decision.run_at == NOW + timedelta(seconds=10)
    assert decision.finish_comment == "busy (SIP 486)"
    [event] = decision.events
    assert event.type is EventType.TASK_RETRY_SCHEDULED
    assert event.data["next_attempt"] == 2 and event.data["outcome"] == "busy"


def test_the_last_try_failing_finishes_the_task_as_failed() -> None:
    decision = decide(state(attempt=3, tries=2), busy(), NOW, random.Random())
    assert (decision.status, decision.finish_result) == (TaskStatus.FINISHED, FinishResult.FAILED)
    assert decision.finish_comment == "busy (SIP 486); attempts exhausted (3 of 3)"


def test_an_invalid_number_is_never_retried() -> None:
    invalid = AttemptResult(False, Outcome.INVALID_NUMBER, sip_code=404)
    decision = decide(state(max_tries=50), invalid, NOW, random.Random())
    assert (decision.status, decision.finish_result) == (TaskStatus.FINISHED, FinishResult.FAILED)
    assert decision.tries_used == 1


def test_an_error_no_retry_can_fix_finishes_the_task() -> None:
    broken = AttemptResult(False, Outcome.FAILED, retryable=False, comment="bad IVR")
    decision = decide(state(max_tries=5), broken, NOW, random.Random())
    assert (decision.status, decision.finish_comment) == (TaskStatus.FINISHED, "bad IVR")


def test_an_attempt_that_placed_no_call_is_given_back() -> None:
    local = AttemptResult(False, Outcome.FAILED, originated=False, comment="no RTP port")
    decision = decide(state(attempt=2, tries=1), local, NOW, random.Random())
    assert decision.status is TaskStatus.DELAYED
    assert (decision.attempt, decision.tries_used) == (1, 1)
    assert decision.run_at == NOW + NOT_ORIGINATED_PAUSE


def test_an_attempt_that_placed_no_call_and_cannot_succeed_finishes_uncounted() -> None:
    missing = AttemptResult(False, Outcome.FAILED, originated=False, retryable=False,
                            comment="Cannot execute Play. File x.wav doesn't exist")  # fmt: skip
    decision = decide(state(), missing, NOW, random.Random())
    assert (decision.status, decision.attempt, decision.tries_used) == (TaskStatus.FINISHED, 0, 0)
    assert decision.finish_comment == missing.comment


def test_a_lost_worker_counts_as_a_failed_try() -> None:
    lost = AttemptResult(False, Outcome.FAILED, comment=WORKER_LOST)
    decision = decide(state(), lost, NOW, random.Random())
    assert (decision.status, decision.finish_comment) == (TaskStatus.DELAYED, WORKER_LOST)


def test_callback_a_leg_failure_spends_only_a_caller_try_and_waits_the_caller_pause() -> None:
    s = state(kind=TaskKind.CALLBACK, max_tries=2, max_caller_tries=3, caller_pause_s=20)
    decision = decide(s, busy(failed_leg=FailedLeg.A), NOW, random.Random())
    assert (decision.tries_used, decision.caller_tries_used) == (0, 1)
    assert decision.run_at == NOW + timedelta(seconds=20)


def test_callback_b_leg_failure_spends_both_counters_and_waits_the_plain_pause() -> None:
    s = state(kind=TaskKind.CALLBACK, max_tries=2, max_caller_tries=3, caller_pause_s=20)
    decision = decide(s, busy(failed_leg=FailedLeg.B), NOW, random.Random())
    assert (decision.tries_used, decision.caller_tries_used) == (1, 1)
    assert decision.run_at == NOW + timedelta(seconds=10)


def test_callback_caller_counter_running_out_ends_the_task_though_tries_remain() -> None:
    s = state(kind=TaskKind.CALLBACK, attempt=3, caller_tries=2, max_tries=10, max_caller_tries=3)
    decision = decide(s, busy(failed_leg=FailedLeg.A), NOW, random.Random())
    assert decision.status is TaskStatus.FINISHED
    assert decision.finish_comment == "busy (SIP 486); caller attempts exhausted (3 of 3)"


def test_without_a_caller_counter_an_a_leg_failure_spends_a_try() -> None:
    s = state(kind=TaskKind.CALLBACK, max_tries=2)
    decision = decide(s, busy(failed_leg=FailedLeg.A), NOW, random.Random())
    assert (decision.tries_used, decision.caller_tries_used) == (1, 0)


failures = st.sampled_from(
    [
        AttemptResult(False, Outcome.BUSY, sip_code=486, failed_leg=FailedLeg.A),
        AttemptResult(False, Outcome.NO_ANSWER, sip_code=480, failed_leg=FailedLeg.B),
        AttemptResult(False, Outcome.FAILED, sip_code=503),
        AttemptResult(False, Outcome.CANCELED, originated=False),
    ]
)


@given(
    kind=st.sampled_from(list(TaskKind)),
    max_tries=st.integers(1, 50),
    max_caller_tries=st.integers(0, 50),
    outcomes=st.lists(failures, min_size=1, max_size=300),
)
def test_a_task_that_keeps_failing_ends_within_its_tries_and_never_goes_back_in_time(
    kind: TaskKind, max_tries: int, max_caller_tries: int, outcomes: list[AttemptResult]
) -> None:
    s = state(kind=kind, max_tries=max_tries, max_caller_tries=max_caller_tries)
    now, placed = NOW, 0
    for result in outcomes:
        decision = decide(s, result, now, random.Random(0))
        placed += result.originated
        assert decision.tries_used <= max_tries
        if decision.status is TaskStatus.FINISHED:
            assert decision.finish_result is FinishResult.FAILED
            assert placed <= max_tries + (max_caller_tries if kind is TaskKind.CALLBACK else 0)
            return
        assert decision.run_at is not None and decision.run_at >= now
        now = decision.run_at
        s = RetryState(
            s.kind, decision.attempt + 1, decision.tries_used, decision.caller_tries_used,
            s.max_tries, s.max_caller_tries, s.backoff, s.caller_pause_s, s.event_seq,
        )  # fmt: skip
    assert placed < max_tries + (max_caller_tries if kind is TaskKind.CALLBACK else 0) + 1
