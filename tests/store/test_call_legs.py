"""Write-ahead call legs (DESIGN §4): stored before dialling, fenced on the task; answered and
ended as they happen; closed as interrupted by the reaper; a late result is still the record."""

from __future__ import annotations

from datetime import timedelta

from test_store import finished, msg_task, setup_queue

from ringback.clock import FakeClock
from ringback.domain.model import LegState, Outcome
from ringback.store.db import Store
from ringback.store.legs_sql import AttemptLegs, LegWrite
from ringback.store.records import ClaimedTask, Completion
from ringback.telephony.base import CallRecord
from support import leg_record


def _record(clock: FakeClock, leg_uuid: str) -> CallRecord:
    return leg_record(clock, leg_uuid)


class _Finisher:
    """A reaper's judge that finishes every task and keeps the legs it was shown."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.seen: list[AttemptLegs] = []

    def __call__(self, claimed: ClaimedTask, legs: AttemptLegs) -> Completion:
        self.seen.append(legs)
        done = finished(self.clock)
        now = self.clock.now()
        return Completion(claimed.id, claimed.fence, done, done.events, expired_before=now)


async def _claimed_task(store: Store, clock: FakeClock) -> ClaimedTask:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    return claimed


def _write(task: ClaimedTask, record: CallRecord, state: LegState, fence: int = 0) -> LegWrite:
    return LegWrite(task.id, fence or task.fence, task.attempt, "w1", record, state)


async def test_a_leg_is_stored_dialing_only_while_the_worker_holds_the_task(
    store: Store, clock: FakeClock
) -> None:
    task = await _claimed_task(store, clock)
    held = _write(task, _record(clock, "leg-1"), LegState.DIALING)
    stale = _write(task, _record(clock, "leg-2"), LegState.DIALING, fence=task.fence + 7)
    assert await store.write_legs([held, stale]) == {"leg-1"}
    [row] = await store.calls(task_id=task.id)
    assert (row.leg_uuid, row.state, row.worker, row.attempt) == ("leg-1", "dialing", "w1", 1)
    assert row.ended_at is None and row.outcome is None


async def test_an_answer_and_an_end_update_the_one_row_of_a_leg(
    store: Store, clock: FakeClock
) -> None:
    task = await _claimed_task(store, clock)
    record = _record(clock, "leg-1")
    assert await store.write_legs([_write(task, record, LegState.DIALING)]) == {"leg-1"}
    clock.advance(2)
    record.answered_at = record.ringing_at = clock.now()
    await store.write_legs([_write(task, record, LegState.ANSWERED)])
    [row] = await store.calls(task_id=task.id)
    assert (row.state, row.answered_at) == ("answered", clock.now())
    clock.advance(5)
    record.ended_at, record.outcome, record.hangup_disposition = (
        clock.now(),
        Outcome.ANSWERED,
        "send_bye",
    )
    done = finished(clock)
    completion = Completion(task.id, task.fence, done, done.events, calls=[record], attempt=1)
    assert await store.complete([completion], store.clock.now()) == [True]
    [row] = await store.calls(task_id=task.id)
    assert (row.state, row.outcome, row.billsec_ms) == ("ended", "answered", 5000)


async def test_the_reaper_judges_on_stored_legs_and_closes_them_interrupted(
    store: Store, clock: FakeClock
) -> None:
    task = await _claimed_task(store, clock)
    record = _record(clock, "leg-1")
    await store.write_legs([_write(task, record, LegState.DIALING)])
    record.answered_at = clock.now() + timedelta(seconds=1)
    await store.write_legs([_write(task, record, LegState.ANSWERED)])
    clock.advance(31)
    judge = _Finisher(clock)
    assert await store.reap(clock.now(), judge) == 1
    assert judge.seen == [AttemptLegs(stored=1, answered=True)]
    [row] = await store.calls(task_id=task.id)
    assert (row.state, row.hangup_disposition, row.hangup_cause, row.outcome) == (
        "interrupted",
        "interrupted",
        "WORKER_LOST",
        "answered",
    )
    # the reaped task's legs may no longer be opened: nobody dials for a reaped attempt
    late_open = _write(task, _record(clock, "leg-2"), LegState.DIALING)
    assert await store.write_legs([late_open]) == set()


async def test_a_result_refused_after_a_reap_is_still_the_call_record(
    store: Store, clock: FakeClock
) -> None:
    task = await _claimed_task(store, clock)
    record = _record(clock, "leg-1")
    await store.write_legs([_write(task, record, LegState.DIALING)])
    clock.advance(31)
    assert await store.reap(clock.now(), _Finisher(clock)) == 1
    record.ended_at, record.outcome, record.sip_code = clock.now(), Outcome.BUSY, 486
    done = finished(clock)
    late = Completion(task.id, task.fence, done, done.events, calls=[record], attempt=1)
    assert await store.complete([late], store.clock.now()) == [False]
    [row] = await store.calls(task_id=task.id)
    assert (row.state, row.outcome, row.sip_code, row.attempt) == ("ended", "busy", 486, 1)
