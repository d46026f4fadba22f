"""The task state machine: what happens to a task after an attempt (DESIGN §3).

``decide(state, result, now, rng)`` is pure: the engine applies the :class:`Decision` it returns
in one fenced transaction together with the call records and the events.

Counting rules:
- an attempt counts only once a call was originated; otherwise it is given back (a call a
  frequency cap kept from being placed: the task waits until the cap's moment, ``retry_at``);
- ``invalid_number`` (SIP 404 / 484 / 604) and errors no retry can fix end the task at once;
- an attempt whose call was cut by a fault on our side (``interrupted``: its worker died, or
  stopped after the callee answered) ends the task unless the queue's policy
  ``redial_interrupted`` asks to call again: the callee may have answered, and ringing someone
  again who picked up is what an operator least wants;
- plain tasks spend one try per attempt and wait the backoff (``try_again_pause`` for callbacks);
- a callback with ``try_count_caller`` > 0 spends one caller try on every attempt; an attempt that
  failed on the A leg spends only that and waits ``try_again_pause_caller``, one that reached A but
  not B spends a try too and waits ``try_again_pause``; either counter running out ends the task.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from ringback.domain.backoff import retry_delay_ms
from ringback.domain.model import (
    AttemptResult,
    Decision,
    EventType,
    FailedLeg,
    FinishResult,
    NewEvent,
    Outcome,
    RetryState,
    TaskKind,
    TaskStatus,
)

#: how long to wait before trying again when no call could be originated (local dialer trouble)
NOT_ORIGINATED_PAUSE = timedelta(seconds=30)
WORKER_LOST = "worker lost"


def lost_attempt(legs_stored: int, answered: bool, why: str = WORKER_LOST) -> AttemptResult:
    """The result of an attempt whose worker died, from the legs it had stored.

    Legs are stored before they are dialled, so no stored leg means no call was placed: the
    attempt is given back at once and spends no try. Otherwise a call was placed and cut by
    us: ``interrupted``. A leg still ``dialing`` may have been answered in the moment before
    the worker died (an answer is stored a few milliseconds after it happens), so it counts
    as interrupted too: whether the task is tried again is the queue's ``redial_interrupted``.
    """
    if legs_stored == 0:
        return AttemptResult(
            success=False,
            outcome=Outcome.FAILED,
            originated=False,
            comment=f"{why} before dialling: no call was placed, no try spent",
            retry_in_s=0.0,
        )
    if answered:
        return AttemptResult(
            success=False,
            outcome=Outcome.ANSWERED,
            comment=f"{why}: the call was interrupted after the callee answered",
            interrupted=True,
        )
    return AttemptResult(
        success=False,
        outcome=Outcome.FAILED,
        comment=f"{why} while the call was ringing (the callee may have answered)",
        interrupted=True,
    )


def decide(state: RetryState, result: AttemptResult, now: datetime, rng: random.Random) -> Decision:
    if not result.originated:
        return _not_originated(state, result, now)
    if result.success:
        comment = result.comment or "success"
        return _finish(
            now,
            FinishResult.SUCCESS,
            comment,
            state.attempt,
            state.tries_used + 1,
            state.caller_tries_used,
        )
    if result.interrupted and not state.redial_interrupted:
        return _finish(
            now,
            FinishResult.FAILED,
            f"{_why(result)}; not called again (the queue's redial_interrupted is off)",
            state.attempt,
            state.tries_used + 1,
            state.caller_tries_used,
        )
    if result.outcome is Outcome.INVALID_NUMBER or not result.retryable:
        return _finish(
            now,
            FinishResult.FAILED,
            _why(result),
            state.attempt,
            state.tries_used + 1,
            state.caller_tries_used,
        )

    tries, caller_tries = state.tries_used, state.caller_tries_used
    uses_caller_counter = state.kind is TaskKind.CALLBACK and state.max_caller_tries > 0
    if uses_caller_counter:
        caller_tries += 1
        if result.failed_leg is FailedLeg.A:
            pause = timedelta(seconds=state.caller_pause_s)
        else:
            tries += 1
            pause = timedelta(milliseconds=retry_delay_ms(state.backoff, tries, rng))
        exhausted = caller_tries >= state.max_caller_tries or tries >= state.max_tries
    else:
        tries += 1
        pause = timedelta(milliseconds=retry_delay_ms(state.backoff, tries, rng))
        exhausted = tries >= state.max_tries

    if exhausted:
        comment = f"{_why(result)}; {_spent(state, tries, caller_tries, uses_caller_counter)}"
        return _finish(now, FinishResult.FAILED, comment, state.attempt, tries, caller_tries)

    run_at = now + pause
    if result.retry_at is not None:
        run_at = max(run_at, result.retry_at)
    return Decision(
        status=TaskStatus.DELAYED,
        run_at=run_at,
        tries_used=tries,
        caller_tries_used=caller_tries,
        attempt=state.attempt,
        finish_comment=_why(result),
        events=[
            NewEvent(
                EventType.TASK_RETRY_SCHEDULED,
                now,
                {
                    "attempt": state.attempt,
                    "next_attempt": state.attempt + 1,
                    "run_at": run_at.isoformat(),
                    "reason": _why(result),
                    "outcome": result.outcome.value,
                },
            )
        ],
    )


def _not_originated(state: RetryState, result: AttemptResult, now: datetime) -> Decision:
    given_back = state.attempt - 1
    if not result.retryable:
        return _finish(
            now,
            FinishResult.FAILED,
            _why(result),
            given_back,
            state.tries_used,
            state.caller_tries_used,
        )
    pause = (
        NOT_ORIGINATED_PAUSE if result.retry_in_s is None else timedelta(seconds=result.retry_in_s)
    )
    run_at = now + pause if result.retry_at is None else max(now, result.retry_at)
    return Decision(
        status=TaskStatus.DELAYED,
        run_at=run_at,
        tries_used=state.tries_used,
        caller_tries_used=state.caller_tries_used,
        attempt=given_back,
        finish_comment=_why(result),
        events=[
            NewEvent(
                EventType.TASK_RETRY_SCHEDULED,
                now,
                {
                    "attempt": state.attempt,
                    "next_attempt": state.attempt,
                    "run_at": run_at.isoformat(),
                    "reason": f"no call was placed: {_why(result)}",
                    "outcome": result.outcome.value,
                },
            )
        ],
    )


def _finish(
    now: datetime,
    result: FinishResult,
    comment: str,
    attempt: int,
    tries: int,
    caller_tries: int,
) -> Decision:
    return Decision(
        status=TaskStatus.FINISHED,
        run_at=None,
        tries_used=tries,
        caller_tries_used=caller_tries,
        attempt=attempt,
        finish_result=result,
        finish_comment=comment,
        events=[
            NewEvent(
                EventType.TASK_FINISHED,
                now,
                {"result": result.value, "comment": comment, "attempts": attempt},
            )
        ],
    )


def _why(result: AttemptResult) -> str:
    if result.comment:
        return result.comment
    if result.sip_code:
        return f"{result.outcome.value} (SIP {result.sip_code})"
    return result.outcome.value


def _spent(state: RetryState, tries: int, caller_tries: int, uses_caller_counter: bool) -> str:
    if uses_caller_counter and caller_tries >= state.max_caller_tries:
        return f"caller attempts exhausted ({caller_tries} of {state.max_caller_tries})"
    return f"attempts exhausted ({tries} of {state.max_tries})"
