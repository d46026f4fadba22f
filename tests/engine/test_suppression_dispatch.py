"""Do-not-call lists are checked at dispatch time, in the write of each call leg right before
it is dialled: a suppressed leg is never dialled, and its task finishes failed without a retry,
its comment naming the list. Runs on SQLite and PostgreSQL with a fake clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ringback.clock import FakeClock
from ringback.service import NewEntry, SuppressionService
from ringback.store.db import Store
from ringback.telephony.base import Call, OriginateRequest
from ringback.telephony.sim import SimDialer, load_sim_rules
from worker_env import B_NUMBER, BUSY, CALLER, OK, WorkerEnv, worker_env


class _Counting:
    """The simulator, counting the numbers it was really asked to dial."""

    name = "counting"

    def __init__(self, clock: FakeClock) -> None:
        self.inner = SimDialer(clock, load_sim_rules(None), fast=True)
        self.dialled: list[str] = []

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


async def _suppress(env: WorkerEnv, number: str, **fields: object) -> None:
    lists = SuppressionService(env.store, env.clock)
    entry = {"list_name": "dnc", "source": "opt-out call", **fields}
    await lists.add(env.client_id, [NewEntry(number, **entry)])  # type: ignore[arg-type]


async def test_a_number_added_while_its_task_waits_between_attempts_is_not_dialled_again(
    env: WorkerEnv,
) -> None:
    task_id = await env.msg_call(BUSY, attempts=3, backoff={"type": "fixed", "delay": 60_000})
    assert await env.worker.drain() == 1
    waiting = await env.task(task_id)
    assert (waiting.stored_status, waiting.tries_used, _dialled(env)) == ("delayed", 1, [BUSY])
    await _suppress(env, BUSY)
    env.clock.set(waiting.run_at)
    assert await env.worker.drain() == 1
    task = await env.task(task_id)
    assert (task.stored_status, task.finish_result) == ("finished", "failed")
    assert task.finish_comment == "suppressed: on list 'dnc' (source opt-out call)"
    assert (task.attempt, task.tries_used) == (1, 1)  # the refused attempt placed no call
    assert _dialled(env) == [BUSY]
    assert len(await env.store.calls(task_id=task_id)) == 1
    env.clock.advance(3600)
    assert await env.worker.drain() == 0  # no further attempt
    events = [e.type for e in await env.store.events_for_task(task_id)]
    assert events[-1] == "task.finished" and events.count("task.finished") == 1


async def test_a_number_under_a_suppressed_prefix_is_never_dialled(env: WorkerEnv) -> None:
    await _suppress(env, "090123*", source="tps")
    task_id = await env.msg_call(OK, attempts=5)
    assert await env.worker.drain() == 1
    task = await env.task(task_id)
    assert task.finish_result == "failed" and task.attempt == 0
    assert task.finish_comment == "suppressed: on list 'dnc' (source tps; prefix 090123)"
    assert _dialled(env) == [] and await env.store.calls(task_id=task_id) == []


async def test_an_expired_entry_no_longer_stops_calls(env: WorkerEnv) -> None:
    await _suppress(env, OK, expires_at=env.clock.now() + timedelta(minutes=5))
    env.clock.advance(301)
    task_id = await env.msg_call(OK)
    assert await env.worker.drain() == 1
    assert (await env.task(task_id)).finish_result == "success"


async def test_a_callback_whose_b_number_is_suppressed_calls_a_but_never_b(
    env: WorkerEnv,
) -> None:
    await _suppress(env, B_NUMBER, list_name="partners")
    task_id = await env.callback(try_count=3)
    await env.worker.drain()
    task = await env.task(task_id)
    assert (task.stored_status, task.finish_result) == ("finished", "failed")
    assert task.finish_comment == "suppressed: on list 'partners' (source opt-out call)"
    assert _dialled(env) == [OK]
    assert [c.leg for c in await env.store.calls(task_id=task_id)] == ["a"]


async def test_an_ivr_transfer_to_a_suppressed_number_is_not_placed_and_not_retried(
    env: WorkerEnv,
) -> None:
    await _suppress(env, "0312345678")
    xml = "<IVR><Transfer>0312345678</Transfer><Speak>sorry</Speak></IVR>"
    job = {
        "type": "ivr_call",
        "data": {"calling_number": CALLER, "called_number": OK,
                 "ivr_xml": {"type": "inline", "data": xml}},
        "options": {"attempts": 3},
    }  # fmt: skip
    [task_id] = await env.service.add_jobs(env.client_id, [job])
    await env.worker.drain()
    task = await env.task(task_id)
    assert (task.stored_status, task.finish_result) == ("finished", "failed")
    assert "suppressed: on list 'dnc' (source opt-out call)" in (task.finish_comment or "")
    assert _dialled(env) == [OK]
    [call] = await env.store.calls(task_id=task_id)
    assert any("suppressed: on list 'dnc'" in line for line in call.detail["ivr_trace"])
