"""Calls are durable (DESIGN §4): every leg is stored before it is dialled, a dead worker's
attempt is judged on the legs it stored, and reaping waits until the database has been
reachable for a whole lease. Runs on SQLite and PostgreSQL with a fake clock."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ringback.clock import Clock, FakeClock
from ringback.domain.decide import decide
from ringback.domain.model import AttemptResult, LegState, Outcome
from ringback.engine.worker import Worker, WorkerConfig
from ringback.service import TaskService
from ringback.storage import Storage
from ringback.store.db import QueueChanges, Store
from ringback.store.legs_sql import LegWrite
from ringback.store.records import Completion
from ringback.telephony.base import Call, OriginateRequest
from ringback.telephony.sim import SimDialer, load_sim_rules
from support import leg_record, make_wav

OK = "0901234000"


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


async def _setup(store: Store, clock: FakeClock, tmp_path: Path, **job_options: Any) -> int:
    storage = Storage(tmp_path / "storage")
    client_id = await store.ensure_client("acme", clock.now())
    make_wav(storage.resolve(client_id, "hi.wav"))
    data = {"calling_number": "0506868000", "called_number": OK, "audio_file": "hi.wav"}
    job: dict[str, Any] = {"type": "msg_call", "data": data}
    if job_options:
        job["options"] = job_options
    [task_id] = await TaskService(store, clock).add_jobs(client_id, [job])
    return task_id


def _worker(store: Store, clock: Clock, tmp_path: Path, dialer: Any = None) -> Worker:
    return Worker(
        store,
        dialer or SimDialer(clock, load_sim_rules(None), fast=True),
        Storage(tmp_path / "storage"),
        clock,
        WorkerConfig(lease_seconds=30, reap_every_seconds=1),
        rng=random.Random(3),
        owner="live-worker",
    )


async def test_every_leg_is_stored_as_dialing_before_the_dialer_places_it(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    task_id = await _setup(store, clock, tmp_path)
    witness = _Witness(store, SimDialer(clock, load_sim_rules(None), fast=True))
    assert await _worker(store, clock, tmp_path, witness).drain() == 1
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
    store: Store, clock: FakeClock, tmp_path: Path, answered: bool
) -> None:
    task_id = await _setup(store, clock, tmp_path, attempts=3)
    await _dead_worker_dialled(store, clock, task_id, answered)
    clock.advance(31)
    worker = _worker(store, clock, tmp_path)
    assert await worker.reap() == 1
    task = await store.get_task(task_id)
    assert (task.stored_status, task.finish_result, task.tries_used) == ("finished", "failed", 1)
    assert task.finish_comment is not None and "not called again" in task.finish_comment
    expected = "after the callee answered" if answered else "the callee may have answered"
    assert expected in task.finish_comment
    [call] = await store.calls(task_id=task_id)
    assert (call.state, call.hangup_disposition) == ("interrupted", "interrupted")
    assert (call.answered_at is not None) is answered
    assert (call.outcome == "answered") is answered


async def test_a_queue_that_asks_for_it_tries_an_interrupted_call_again_spending_a_try(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    task_id = await _setup(store, clock, tmp_path, attempts=3)
    queue_id = (await store.get_task(task_id)).queue_id
    await store.update_queue(queue_id, QueueChanges(redial_interrupted=True), clock.now())
    await _dead_worker_dialled(store, clock, task_id, answered=True)
    clock.advance(31)
    worker = _worker(store, clock, tmp_path)
    assert await worker.reap() == 1
    task = await store.get_task(task_id)
    assert (task.stored_status, task.tries_used, task.attempt) == ("delayed", 1, 1)
    clock.set(task.run_at)
    assert await worker.drain() == 1
    task = await store.get_task(task_id)
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


async def _until(condition: Any, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


async def test_a_running_worker_reaps_only_after_reaching_the_database_for_a_whole_lease(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    task_id = await _setup(store, clock, tmp_path)
    await store.claim("dead-worker", clock.now(), 1, 30)
    clock.advance(31)  # the lease ran out before this worker started
    worker = _worker(store, clock, tmp_path)
    runner = asyncio.create_task(worker.run())
    try:
        for _ in range(20):  # 20 s of reaper rounds after the start: less than a lease
            clock.advance(1)
            await asyncio.sleep(0.01)
        assert (await store.get_task(task_id)).stored_status == "executed"
        assert worker.stats.reaped == 0

        async def reaped() -> bool:
            clock.advance(1)
            return worker.stats.reaped == 1

        await _until(reaped)
        assert (clock.now() - (await store.get_task(task_id)).created_at).total_seconds() >= 61
    finally:
        worker.stop()
        await asyncio.wait_for(runner, 30)


async def test_a_failed_write_of_a_leg_does_not_drop_the_results_waiting_behind_it(
    store: Store, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flush contract: legs, then events, then results; a batch whose write fails is kept
    and the batches after it are not taken (they once were, and were lost: the tasks stayed
    ``executed`` for ever after a database outage)."""
    task_id = await _setup(store, clock, tmp_path)
    worker = _worker(store, clock, tmp_path)
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
    task = await store.get_task(task_id)
    assert (task.stored_status, task.finish_result) == ("finished", "success")
    [call] = await store.calls(task_id=task_id)
    assert call.leg_uuid == "cut-leg"


async def test_a_leg_that_cannot_be_stored_is_not_dialled_and_is_tried_again_soon(
    store: Store, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = await _setup(store, clock, tmp_path, attempts=2)
    _fail_leg_writes_once(store, monkeypatch)
    dialer = SimDialer(clock, load_sim_rules(None), fast=True)
    assert await _worker(store, clock, tmp_path, dialer).drain() == 1
    assert dialer.originated == 0  # never placed
    task = await store.get_task(task_id)
    assert (task.stored_status, task.attempt, task.tries_used) == ("delayed", 0, 0)
    assert task.run_at == clock.now() + timedelta(seconds=1)
    assert task.finish_comment is not None and "could not be stored" in task.finish_comment
