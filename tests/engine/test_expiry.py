"""Expiry end to end with a fake clock, on SQLite and PostgreSQL: a task not completed by its
``expires_at`` finishes failed, comment ``expired``, with no further attempt, whether a claim
reaches it (finished instead of dialled) or the worker's sweep does (waiting far ahead)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ringback.clock import FakeClock
from ringback.domain.task_rules import format_seed_time
from ringback.service import InvalidInput
from ringback.store.db import Store
from worker_env import BUSY, OK, WorkerEnv, worker_env


@pytest.fixture
async def env(store: Store, clock: FakeClock, tmp_path: Path) -> WorkerEnv:
    return await worker_env(store, clock, tmp_path)


def _in(env: WorkerEnv, seconds: float) -> str | None:
    return format_seed_time(env.clock.now() + timedelta(seconds=seconds))


async def test_a_job_due_after_its_expiry_is_finished_without_a_call(env: WorkerEnv) -> None:
    task_id = await env.msg_call(OK, delay=60_000, expires_at=_in(env, 30))
    env.clock.advance(60)
    assert await env.worker.drain() == 0  # finished by the claim, never run
    task = await env.task(task_id)
    assert (task.stored_status, task.finish_result, task.finish_comment) == (
        "finished", "failed", "expired",
    )  # fmt: skip
    assert await env.store.calls(task_id=task_id) == []


async def test_a_task_waiting_to_retry_past_its_expiry_is_swept_with_no_further_attempt(
    env: WorkerEnv,
) -> None:
    task_id = await env.callback(b_number=BUSY, try_count=5, try_again_pause=3600,
                                 expires_at=_in(env, 600))  # fmt: skip
    await env.worker.drain()
    assert (await env.task(task_id)).stored_status == "delayed"
    env.clock.advance(599)
    await env.worker.expire()
    assert (await env.task(task_id)).stored_status == "delayed"
    env.clock.advance(2)
    await env.worker.expire()
    task = await env.task(task_id)
    assert (task.finish_result, task.finish_comment, task.tries_used) == ("failed", "expired", 1)
    env.clock.advance(3600)
    assert await env.worker.drain() == 0
    assert len(await env.store.calls(task_id=task_id)) == 2  # the first attempt's A and B legs


async def test_an_expiry_in_the_past_is_refused_naming_the_field(env: WorkerEnv) -> None:
    job = {
        "type": "msg_call",
        "options": {"expires_at": _in(env, -1)},
        "data": {"calling_number": "0506868000", "called_number": OK, "audio_file": "hi.wav"},
    }
    with pytest.raises(InvalidInput) as refused:
        await env.service.add_jobs(env.client_id, [job])
    assert refused.value.details == [
        {"loc": [0, "options", "expires_at"], "msg": "expires_at must be in the future"}
    ]
    with pytest.raises(InvalidInput):
        await env.callback(expires_at=_in(env, 0))
