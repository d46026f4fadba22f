"""Calls are durable (DESIGN §4): every leg is stored before it is dialled, a dead worker's
attempt is judged on the legs it stored, and reaping waits until the database has been
reachable for two leases. Runs on SQLite and PostgreSQL with a fake clock."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ringback.clock import FakeClock
from ringback.domain.decide import decide
from ringback.domain.model import AttemptResult, LegState, Outcome
from ringback.domain.rows import QueueChanges
from ringback.store.db import Store
from ringback.store.legs_sql import LegWrite
from ringback.store.records import Completion
from ringback.telephony.base import Call, OriginateRequest
from ringback.telephony.sim import SimDialer, load_sim_rules
from support import WatchedClock, leg_record
from worker_env import OK, WorkerEnv, until, worker_env


class _Witness:
    """A dialer that looks in the database for each leg at the moment it is asked to dial."""

    name = "witness"

    def __init__(self, store: Store, inner: SimDialer) -> None:
        self.store, self.inner = store, inner
        self.seen: list[tuple[str, str | None]] = []

    async def originate(self, request: OriginateRequest) -> Call:
        rows = {row.leg_uuid: row.state for row in await self.store.calls(client_id=None)}
        self.seen.append((request.leg_uuid, rows.get(request.leg_uuid)))
        return await self.inner.originate(request)

    async def close(self) -> None:
        return None


LIVE: dict[str, Any] = {"owner": "live-worker", "seed": 3, "reap_every_seconds": 1}


@pytest.fixture
async def env(store: Store, clock: FakeClock, tmp_path: Path) -> WorkerEnv:
    """A live worker reaping every second of fake time."""
    return await worker_env(store, clock, tmp_path, **LIVE)


async def test_every_leg_is_stored_as_dialing_before_the_dialer_places_it(
    env: WorkerEnv, store: Store, clock: FakeClock
) -> None:
    task_id = await env.msg_call()
    witness = _Witness(store, SimDialer(clock, load_sim_rules(None), fast=True))
    assert await env.another_worker(witness, **LIVE).drain() == 1
    [(leg_uuid, state_when_dialled)] = witness.seen
    assert state_when_dialled == "dialing"
    [call] = await store.calls(task_id=task_id)
    assert (call.leg_uuid, call.state, call.worker) == (leg_uuid, "ended", "live-worker")


async def _dead_worker_dialled(
    store: Store, clock: FakeClock, task_id: int, answered: bool
) -> None:
    """A worker claims the task, stores its leg (answered or still ringing) and dies."""
    [held] = (await store.claim("dead-worker", clock.now(), 1, 30)).tasks
    record = leg_record(clock, "dead-leg", OK)
    write = LegWrite(held.id, held.fence, held.attempt, "dead-worker", record, LegState.DIALING)
    assert await store.write_legs([write]) == {"dead-leg"}
    if answered:
        record.answered_at = clock.now() + timedelta(seconds=1)
        write.state = LegState.ANSWERED
        await store.write_legs([write])


@pytest.mark.parametrize("answered", [False, True])
async def test_a_dead_workers_placed_call_is_not_placed_again_unless_the_queue_asks(
    env: WorkerEnv, store: Store, clock: FakeClock, answered: bool
) -> None:
    task_id = await env.msg_call(attempts=3)
    await _dead_worker_dialled(store, clock, task_id, answered)
    clock.advance(31)
    assert await env.worker.reap() == 1
    task = await store.get_task(task_id, store.clock.now())
    assert (task.stored_status, task.finish_result, task.tries_used) == ("finished", "failed", 1)
    assert task.finish_comment is not None and "not called again" in task.finish_comment
    expected = "after the callee answered" if answered else "the callee may have answered"
    assert expected in task.finish_comment
    [call] = await store.calls(task_id=task_id)
    assert (call.state, call.hangup_disposition) == ("interrupted", "interrupted")
    assert (call.answered_at is not None) is answered
    assert (call.outcome == "answered") is answered


async def test_a_queue_that_asks_for_it_tries_an_interrupted_call_again_spending_a_try(
    env: WorkerEnv, store: Store, clock: FakeClock
) -> None:
    task_id = await env.msg_call(attempts=3)
    queue_id = (await store.get_task(task_id, store.clock.now())).queue_id
    await store.update_queue(queue_id, QueueChanges(redial_interrupted=True), clock.now())
    await _dead_worker_dialled(store, clock, task_id, answered=True)
    clock.advance(31)
    assert await env.worker.reap() == 1
    task = await store.get_task(task_id, store.clock.now())
    assert (task.stored_status, task.tries_used, task.attempt) == ("delayed", 1, 1)
    clock.set(task.run_at)
    assert await env.worker.drain() == 1
    task = await store.get_task(task_id, store.clock.now())
    assert (task.finish_result, task.attempt, task.tries_used) == ("success", 2, 2)
    states = sorted((c.attempt, c.state) for c in await store.calls(task_id=task_id))
    assert states == [(1, "interrupted"), (2, "ended")]


def _fail_leg_writes_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next write of legs fails as if the database were away."""
    real, failures = store.write_legs, [ConnectionError("database away")]

    async def flaky(writes: Any) -> set[str]:
        if failures:
            raise failures.pop()
        return await real(writes)

    monkeypatch.setattr(store, "write_legs", flaky)


async def test_a_running_worker_reaps_only_after_reaching_the_database_for_two_leases(
    env: WorkerEnv, store: Store, clock: WatchedClock
) -> None:
    task_id = await env.msg_call()
    await store.claim("dead-worker", clock.now(), 1, 30)
    clock.advance(31)  # the lease ran out before this worker started
    worker = env.another_worker(None, **LIVE, idle_poll_seconds=3600)  # sleeps of 1 s: reaper's
    async with env.running(worker):
        await until(lambda: clock.sleeps_of(1) == 1)  # the reaper waits for its first round
        for _ in range(50):  # 50 s of reaper rounds after the start: less than two leases
            rounds = clock.sleeps_of(1)
            clock.advance(1)
            # the round is over once the reaper sleeps again: it has decided not to reap
            await until(lambda rounds=rounds: clock.sleeps_of(1) > rounds)
        assert (await store.get_task(task_id, store.clock.now())).stored_status == "executed"
        assert worker.stats.reaped == 0

        def reaped() -> bool:
            clock.advance(1)
            return worker.stats.reaped == 1

        await until(reaped)
        assert (
            clock.now() - (await store.get_task(task_id, store.clock.now())).created_at
        ).total_seconds() >= 91  # 31 s, then two leases (60 s) of reaching the database


async def test_a_failed_write_of_a_leg_does_not_drop_the_results_waiting_behind_it(
    env: WorkerEnv, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flush contract: legs, then events, then results; a batch whose write fails is kept
    and the batches after it are not taken (they once were, and were lost: the tasks stayed
    ``executed`` for ever after a database outage)."""
    task_id = await env.msg_call()
    worker = env.worker
    [claimed] = (await store.claim(worker.owner, clock.now(), 1, 30)).tasks
    done = decide(
        claimed.retry, AttemptResult(True, Outcome.ANSWERED), clock.now(), random.Random()
    )
    worker._completions.append(Completion(task_id, claimed.fence, done, done.events))
    worker._legs.ended(claimed, [leg_record(clock, "cut-leg", OK)])
    _fail_leg_writes_once(store, monkeypatch)
    with pytest.raises(ConnectionError):
        await worker._flush_once()
    await worker._flush_once()  # the database is back
    task = await store.get_task(task_id, store.clock.now())
    assert (task.stored_status, task.finish_result) == ("finished", "success")
    [call] = await store.calls(task_id=task_id)
    assert call.leg_uuid == "cut-leg"


async def test_a_leg_that_cannot_be_stored_is_not_dialled_and_is_tried_again_soon(
    env: WorkerEnv, store: Store, clock: WatchedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = await env.msg_call(attempts=2)
    _fail_leg_writes_once(store, monkeypatch)
    dialer = SimDialer(clock, load_sim_rules(None), fast=True)
    worker = env.another_worker(dialer, **LIVE)
    failed_at = clock.now()
    draining = asyncio.ensure_future(worker.drain())
    # drain has run what was due and is closing; its writer waits 1 s of the clock to retry
    await until(lambda: worker._closing and clock.sleeps_of(1) == 1)
    clock.advance(1)
    assert await draining == 1
    assert dialer.originated == 0  # never placed
    task = await store.get_task(task_id, store.clock.now())
    assert (task.stored_status, task.attempt, task.tries_used) == ("delayed", 0, 0)
    assert task.run_at == failed_at + timedelta(seconds=1)
    assert task.finish_comment is not None and "could not be stored" in task.finish_comment


async def test_a_leg_whose_stored_reply_comes_after_the_lease_ran_out_is_not_dialled(
    env: WorkerEnv, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The open committed, but its reply was held up (the database's link went down just
    after it) until the worker's lease had run out: a reaper may have given the task's slot to
    another call or finished the task, so the leg is not dialled and is stored as not sent;
    the reaper then gives the task back without spending a try."""
    task_id = await env.msg_call(attempts=2)
    real, committed, reply = store.write_legs, asyncio.Event(), asyncio.Event()

    async def late_reply(writes: Any) -> Any:
        opened = await real(writes)
        if any(w.state is LegState.DIALING for w in writes):
            committed.set()
            await reply.wait()
        return opened

    monkeypatch.setattr(store, "write_legs", late_reply)
    dialer = SimDialer(clock, load_sim_rules(None), fast=True)
    worker = env.another_worker(dialer, **LIVE)
    draining = asyncio.ensure_future(worker.drain())
    await until(committed.is_set, what="the leg's open committed")
    clock.advance(31)  # past the 30 s lease the claim took
    reply.set()
    assert await draining == 1
    assert dialer.originated == 0
    [call] = await store.calls(task_id=task_id)
    assert (call.state, call.hangup_disposition) == ("ended", "not_sent")
    assert "lease on the task ran out" in str(call.detail.get("error"))
    assert await env.worker.reap() == 1
    task = await store.get_task(task_id, store.clock.now())
    assert (task.stored_status, task.tries_used) == ("delayed", 0)
    assert task.finish_comment is not None and "no call was placed" in task.finish_comment


async def test_a_result_waits_while_an_earlier_write_of_its_leg_is_under_way(
    env: WorkerEnv, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No two writes of one leg at once. On PostgreSQL a worker's writes run in parallel, and
    a leg's answer in one and its record with the attempt's result in another, each updating
    the same call rows in its own order, deadlocked; the server aborted one after a second and
    an open written beside the answer was not dialled (seen in `bench/engine.py`: a task with
    a call "not_sent" and a second one)."""
    task_id = await env.msg_call()
    worker = env.worker
    [claimed] = (await store.claim(worker.owner, clock.now(), 1, 30)).tasks
    record = leg_record(clock, "leg-x", OK, answered_at=clock.now())
    worker._legs.answered(claimed, record)  # the answer, queued while the call went on
    real_legs, real_complete = store.write_legs, store.complete
    entered, release, order = asyncio.Event(), asyncio.Event(), []

    async def held_legs(writes: Any) -> Any:
        entered.set()
        await release.wait()
        order.append("legs")
        return await real_legs(writes)

    async def complete(*args: Any) -> Any:
        order.append("result")
        return await real_complete(*args)

    monkeypatch.setattr(store, "write_legs", held_legs)
    monkeypatch.setattr(store, "complete", complete)
    answer = asyncio.ensure_future(worker._flush_once())
    await until(entered.is_set, what="the answer's write under way")
    done = decide(
        claimed.retry, AttemptResult(True, Outcome.ANSWERED), clock.now(), random.Random()
    )
    worker._completions.append(
        Completion(task_id, claimed.fence, done, done.events, calls=[record], attempt=1)
    )
    result = asyncio.ensure_future(worker._flush_once())  # a second write, in parallel
    for _ in range(50):  # every step it can take without the first write ending
        await asyncio.sleep(0)
    assert order == [] and not result.done()
    release.set()
    await asyncio.gather(answer, result)
    assert order == ["legs", "result"]
    task = await store.get_task(task_id, store.clock.now())
    assert (task.stored_status, task.finish_result) == ("finished", "success")
    [call] = await store.calls(task_id=task_id)
    assert (call.leg_uuid, call.state) == ("leg-x", "ended")


async def test_an_answer_whose_leg_is_being_written_whole_is_dropped_and_holds_up_no_open(
    env: WorkerEnv, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: a leg's record with its result is being written when its answer
    comes up for writing (a short call: answered and ended within one write). The answer is
    not written (the record has it), so the legs written beside it, opens of other calls that
    wait to be dialled, do not wait for the result's write."""
    first, second = await env.msg_call(), await env.msg_call()
    worker = env.worker
    [one, two] = (await store.claim(worker.owner, clock.now(), 2, 30)).tasks
    assert {one.id, two.id} == {first, second}
    record = leg_record(clock, "leg-x", OK, answered_at=clock.now())
    done = decide(one.retry, AttemptResult(True, Outcome.ANSWERED), clock.now(), random.Random())
    worker._completions.append(
        Completion(one.id, one.fence, done, done.events, calls=[record], attempt=1)
    )
    real_complete, real_legs = store.complete, store.write_legs
    entered, release, written = asyncio.Event(), asyncio.Event(), []

    async def held_complete(*args: Any) -> Any:
        entered.set()
        await release.wait()
        return await real_complete(*args)

    async def legs(writes: Any) -> Any:
        written.append([(w.record.leg_uuid, w.state) for w in writes])
        return await real_legs(writes)

    monkeypatch.setattr(store, "complete", held_complete)
    monkeypatch.setattr(store, "write_legs", legs)
    result = asyncio.ensure_future(worker._flush_once())
    await until(entered.is_set, what="the result's write under way")
    worker._legs.answered(one, record)  # its answer comes up only now
    opened = asyncio.ensure_future(worker._legs.open(two, leg_record(clock, "leg-y", OK)))
    await until(
        lambda: any(w.state is LegState.DIALING for w in worker._legs.pending),
        what="the open queued",
    )
    await asyncio.wait_for(worker._flush_once(), 10)  # a second write, in parallel
    assert written == [[("leg-y", LegState.DIALING)]] and not result.done()
    assert await opened is True  # stored while the result's write waits
    release.set()
    await result
    [call] = await store.calls(task_id=first)
    assert (call.leg_uuid, call.state) == ("leg-x", "ended")
