"""Frequency caps per callee are checked at dispatch time, in the write of each call leg right
before it is dialled, across queues: a call beyond a cap is not placed, its task waits until
the first moment the cap allows and spends no try. Allowed caller ids are checked there too
(the dialer's default caller id included). SQLite and PostgreSQL, with a fake clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ringback.clock import FakeClock
from ringback.console.why import why_not_dialling
from ringback.service import CampaignRuleService
from ringback.store.db import Store
from ringback.telephony.base import Call, OriginateRequest
from ringback.telephony.sim import SimDialer, load_sim_rules
from worker_env import B_NUMBER, BUSY, OK, WorkerEnv, until, worker_env


class _Counting:
    """The simulator, counting the numbers it was really asked to dial."""

    name = "counting"

    def __init__(self, clock: FakeClock, default_caller_id: str | None = None) -> None:
        self.inner = SimDialer(clock, load_sim_rules(None), fast=True)
        self.dialled: list[str] = []
        self.default_caller_id = default_caller_id

    async def originate(self, request: OriginateRequest) -> Call:
        self.dialled.append(request.to_number)
        return await self.inner.originate(request)

    async def close(self) -> None:
        return None


@pytest.fixture
async def env(store: Store, clock: FakeClock, tmp_path: Path) -> WorkerEnv:
    return await worker_env(store, clock, tmp_path, dialer=_Counting(clock))


def _dialled(env: WorkerEnv) -> list[str]:
    dialer = env.worker.dialer
    assert isinstance(dialer, _Counting)
    return dialer.dialled


async def _second_queue(env: WorkerEnv) -> str:
    await env.store.ensure_queue(env.client_id, "second", env.clock.now(), status="on")
    return "second"


async def test_the_fourth_call_to_a_number_in_24h_waits_across_queues_without_spending_a_try(
    env: WorkerEnv,
) -> None:
    rules = CampaignRuleService(env.store, env.clock)
    await rules.set_frequency_caps(env.client_id, [(3, 86400), (2, 3600)])
    second = await _second_queue(env)
    t0 = env.clock.now()
    for minutes, queue in ((0, None), (90, second), (180, None)):
        env.clock.set(t0 + timedelta(minutes=minutes))
        task_id = await env.msg_call(OK, queue=queue)
        assert await env.worker.drain() == 1
        assert (await env.task(task_id)).finish_result == "success"
    env.clock.set(t0 + timedelta(minutes=200))
    fourth = await env.msg_call(OK, queue=second, attempts=2)
    assert await env.worker.drain() == 1
    task = await env.task(fourth)
    allowed = t0 + timedelta(hours=24)  # the oldest of the three counted calls + 24 h
    assert (task.stored_status, task.run_at) == ("delayed", allowed)
    assert (task.attempt, task.tries_used) == (0, 0)  # no try spent
    assert task.finish_comment == (
        f"frequency cap: {OK} was called 3 per 1d already; "
        f"next call allowed at {allowed:%Y-%m-%d %H:%M:%S} UTC"
    )
    assert await env.store.calls(task_id=fourth) == []  # nothing placed, nothing stored
    queue = await env.store.find_queue(env.client_id, second)
    why = why_not_dialling(task, queue, env.clock.now())
    assert why is not None and why.startswith(f"frequency cap: {OK} was called 3 per 1d")
    events = await env.store.events_for_task(fourth)
    assert events[-1].type == "task.retry_scheduled"
    assert events[-1].data["run_at"] == allowed.isoformat()
    env.clock.set(allowed - timedelta(seconds=1))
    assert await env.worker.drain() == 0
    env.clock.set(allowed)
    assert await env.worker.drain() == 1
    task = await env.task(fourth)
    assert (task.finish_result, task.tries_used) == ("success", 1)
    assert _dialled(env) == [OK] * 4


async def test_a_call_within_the_cap_window_of_another_number_is_not_delayed(
    env: WorkerEnv,
) -> None:
    await CampaignRuleService(env.store, env.clock).set_frequency_caps(env.client_id, [(1, 3600)])
    first = await env.msg_call(BUSY, attempts=3, backoff={"type": "fixed", "delay": 60_000})
    other = await env.msg_call(OK)
    assert await env.worker.drain() == 2
    assert (await env.task(other)).finish_result == "success"
    waiting = await env.task(first)
    assert (waiting.tries_used, waiting.stored_status) == (1, "delayed")
    env.clock.set(waiting.run_at)  # the retry after 60 s: the busy call counted
    assert await env.worker.drain() == 1
    capped = await env.task(first)
    assert (capped.tries_used, capped.attempt) == (1, 1)  # the capped attempt given back
    assert capped.run_at == waiting.run_at - timedelta(seconds=60) + timedelta(hours=1)


async def test_two_workers_claiming_calls_to_one_number_place_only_what_the_cap_allows(
    env: WorkerEnv,
) -> None:
    await CampaignRuleService(env.store, env.clock).set_frequency_caps(env.client_id, [(1, 3600)])
    second = await _second_queue(env)
    ids = [await env.msg_call(OK), await env.msg_call(OK, queue=second)]
    one = env.another_worker(owner="worker-1", claim_batch=1)
    two = env.another_worker(owner="worker-2", claim_batch=1)
    async with env.running(one), env.running(two):

        async def settled() -> bool:
            tasks = [await env.task(i) for i in ids]
            return sorted(t.stored_status for t in tasks) == ["delayed", "finished"]

        await until(settled, what="one call placed, one delayed")
    tasks = [await env.task(i) for i in ids]
    assert sorted([len(await env.store.calls(task_id=i)) for i in ids]) == [0, 1]
    [waiting] = [t for t in tasks if t.stored_status == "delayed"]
    assert waiting.tries_used == 0 and (waiting.finish_comment or "").startswith("frequency cap")


async def test_a_leg_showing_a_caller_id_off_the_list_is_not_placed(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    dialer = _Counting(clock, default_caller_id="0999000000")
    env = await worker_env(store, clock, tmp_path, dialer=dialer)
    await CampaignRuleService(store, clock).set_caller_ids(env.client_id, ["0506868*"])
    task_id = await env.callback(try_count=3)  # names no caller id: the B leg shows A's number
    await env.worker.drain()
    task = await env.task(task_id)
    assert (task.stored_status, task.finish_result) == ("finished", "failed")
    assert task.finish_comment == (
        "caller id 0999000000 is not on the client's allowed caller ids"
    )  # the A leg would have shown the dialer's default caller id
    assert dialer.dialled == []
    assert B_NUMBER not in dialer.dialled
