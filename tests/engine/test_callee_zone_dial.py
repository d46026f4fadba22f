"""The callee's time zone and holidays end to end with a fake clock, on SQLite and PostgreSQL
(issue 18): a New York number on a queue with Paris hours 09:00-18:00 is dialled at 09:00 New
York time; a holiday there pushes the dial to the next day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ringback.clock import FakeClock
from ringback.store.db import Store
from worker_env import CALLER, WorkerEnv, worker_env

NEW_YORK = "+12125550123"  # the simulator answers it (no rule decides otherwise)


@pytest.fixture
async def env(store: Store, clock: FakeClock, tmp_path: Path) -> WorkerEnv:
    return await worker_env(store, clock, tmp_path)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def _paris_queue_job(env: WorkerEnv, **extra: Any) -> int:
    hours = {
        "timezone": "Europe/Paris",
        "windows": [{"days": ["mon-fri"], "start": "09:00", "end": "18:00"}],
        **extra,
    }
    await env.store.create_queue(
        env.client_id, "paris", env.clock.now(), status="on", calling_hours=hours
    )
    job = {
        "type": "msg_call",
        "queue": "paris",
        "data": {"calling_number": CALLER, "called_number": NEW_YORK, "audio_file": "hi.wav"},
    }
    [task_id] = await env.service.add_jobs(env.client_id, [job])
    return task_id


async def _dialled_at(env: WorkerEnv, task_id: int, expected: datetime) -> None:
    """Nothing is dialled a second before ``expected``; at it, the task's call starts."""
    task = await env.task(task_id)
    assert task.status == "delayed_interval"
    assert task.run_at == expected
    env.clock.set(expected - timedelta(seconds=1))
    assert await env.worker.drain() == 0
    env.clock.advance(1)
    assert await env.worker.drain() == 1
    [call] = await env.store.calls(task_id=task_id)
    assert call.started_at == expected


async def test_a_new_york_number_on_a_paris_queue_is_dialled_at_nine_new_york_time(
    env: WorkerEnv,
) -> None:
    env.clock.set(_utc("2026-03-03T09:00:00+01:00"))  # Tuesday 09:00 in Paris, 03:00 in NY
    task_id = await _paris_queue_job(env)
    task = await env.task(task_id)
    assert (task.timezone, task.timezone_source) == ("America/New_York", "number")
    assert await env.worker.drain() == 0  # open in Paris, not yet in New York
    await _dialled_at(env, task_id, _utc("2026-03-03T09:00:00-05:00"))


async def test_a_holiday_in_the_callees_zone_pushes_the_dial_to_the_next_day(
    env: WorkerEnv,
) -> None:
    env.clock.set(_utc("2026-07-01T09:00:00+02:00"))  # Wednesday 09:00 in Paris, 03:00 in NY
    holiday = {"date": "2026-07-01", "name": "Blackout", "timezones": ["America/New_York"]}
    task_id = await _paris_queue_job(env, holidays=[holiday])
    assert await env.worker.drain() == 0
    [*_, delayed] = await env.store.events_for_task(task_id)
    assert delayed.data["reason"] == "outside calling hours, holiday: Blackout (2026-07-01)"
    await _dialled_at(env, task_id, _utc("2026-07-02T09:00:00-04:00"))  # Thursday in New York
