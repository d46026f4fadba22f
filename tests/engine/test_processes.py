"""Real worker processes against one database: the concurrency limit across processes, and
recovery after ``kill -9``.

These start ``python -m ringback worker`` subprocesses (killed by PID at the end) and use the
simulator with short calls, so they take a few seconds of real time each.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.domain.decide import decide
from ringback.domain.model import AttemptResult, Outcome, RetryState
from ringback.domain.rows import QueueChanges
from ringback.service import TaskService
from ringback.store.db import Store, open_store
from ringback.store.records import Completion
from support import PG_URL, make_wav, require_pg

pytestmark = pytest.mark.slow  # starts `ringback worker` processes


@dataclass
class Deployment:
    url: str
    store: Store
    storage_dir: Path
    rules: Path
    processes: list[subprocess.Popen[bytes]]
    logs: Path

    def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        full_env = {
            **os.environ,
            "RINGBACK_DATABASE_URL": self.url,
            "RINGBACK_STORAGE_DIR": str(self.storage_dir),
            "RINGBACK_SIM_RULES": str(self.rules),
            **env,
        }
        log = open(self.logs / f"worker-{len(self.processes)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "ringback", "worker"], env=full_env, stdout=log, stderr=log
        )
        self.processes.append(proc)
        return proc


@pytest.fixture(params=["sqlite", "postgresql"])
async def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Deployment]:
    import asyncpg

    database = None
    if request.param == "postgresql":
        require_pg()
        database = f"rb_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(PG_URL)
        await admin.execute(f"CREATE DATABASE {database}")
        await admin.close()
        url = PG_URL.rsplit("/", 1)[0] + "/" + database
    else:
        url = f"sqlite:///{tmp_path / 'ringback.db'}"
    rules = tmp_path / "sim.toml"
    rules.write_text("[defaults]\nring_seconds = 0.0\ntalk_seconds = 600.0\n")
    store = await open_store(url, SystemClock(), migrate=True)
    dep = Deployment(url, store, tmp_path / "storage", rules, [], tmp_path)
    try:
        yield dep
    finally:
        for proc in dep.processes:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        await store.close()
        if database:
            admin = await asyncpg.connect(PG_URL)
            await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            await admin.close()


async def wait_for(check, within: float, what: str) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def max_overlap(intervals: list[tuple[int, int]]) -> int:
    """Most intervals [start, end) open at one instant."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = current = 0
    for _, delta in points:  # at equal times, -1 sorts before +1: an end frees the slot first
        current += delta
        best = max(best, current)
    return best


def stop_all(processes: list[subprocess.Popen[bytes]]) -> Iterator[int | None]:
    for proc in processes:
        proc.send_signal(signal.SIGTERM)
    for proc in processes:
        yield proc.wait(timeout=30)


async def test_three_workers_never_exceed_the_queue_limit_and_finish_each_task_once(
    deployment: Deployment,
) -> None:
    store, clock = deployment.store, SystemClock()
    client = await store.ensure_client("acme", clock.now())
    make_wav(Storage(deployment.storage_dir).resolve(client, "short.wav"), 0.05)
    queue = await store.create_queue(client, "mp", clock.now(), concurrent_task_limit=4)
    data = {"calling_number": "0506868000", "audio_file": "short.wav"}
    jobs = [
        {"type": "msg_call", "queue": "mp", "data": {**data, "called_number": f"09000{i:05d}"}}
        for i in range(300)
    ]
    ids = await TaskService(store, clock).add_jobs(client, jobs)
    # each worker holds at most 2 calls: only together can they reach the limit of 4, so the
    # limit is enforced across processes, not inside one
    workers = [deployment.start_worker(RINGBACK_MAX_IN_FLIGHT="2") for _ in range(3)]

    async def all_started() -> bool:  # all three are claiming before the queue opens
        logs = [deployment.logs / f"worker-{n}.log" for n in range(len(workers))]
        return all("worker started" in log.read_text(errors="replace") for log in logs)

    await wait_for(all_started, 60, "three workers to start")
    await store.update_queue(queue.id, QueueChanges(status="on"), clock.now())

    async def all_finished() -> bool:
        counts = (await store.status_report(clock.now(), client)).counts
        return counts.get("finished", 0) == 300

    await wait_for(all_finished, 120, "300 tasks to finish")
    assert all(code == 0 for code in stop_all(workers))

    calls = await store.calls(client_id=client, limit=10_000)
    assert sorted(c.task_id for c in calls) == sorted(ids)  # one call per task, none missing
    assert all(c.outcome == "answered" and c.ended_at for c in calls)
    intervals = [
        (int(c.started_at.timestamp() * 1000), int(c.ended_at.timestamp() * 1000))
        for c in calls
        if c.ended_at
    ]
    assert max_overlap(intervals) <= 4
    assert len({c.detail["worker"] for c in calls}) >= 2
    for task_id in ids:
        events = [e.type for e in await store.events_for_task(task_id)]
        assert events.count("task.finished") == 1 and events.count("task.started") == 1
        task = await store.get_task(task_id, store.clock.now())
        assert (task.finish_result, task.attempt) == ("success", 1)


async def test_tasks_of_a_killed_worker_are_recovered_once_by_another(
    deployment: Deployment,
) -> None:
    store, clock = deployment.store, SystemClock()
    client = await store.ensure_client("acme", clock.now())
    make_wav(Storage(deployment.storage_dir).resolve(client, "long.wav"), 1.5)
    # the queue asks for calls cut by a fault on our side to be placed again
    await store.create_queue(
        client, "crash", clock.now(), concurrent_task_limit=10, status="on",
        redial_interrupted=True,
    )  # fmt: skip
    data = {"calling_number": "0506868000", "audio_file": "long.wav"}
    jobs = [
        {
            "type": "msg_call",
            "queue": "crash",
            "options": {"attempts": 2},
            "data": {**data, "called_number": f"09000{i:05d}"},
        }
        for i in range(5)
    ]
    ids = await TaskService(store, clock).add_jobs(client, jobs)
    lease = {"RINGBACK_LEASE_SECONDS": "2"}
    doomed = deployment.start_worker(**lease)

    async def all_held() -> bool:
        return [(await store.get_task(i, store.clock.now())).stored_status for i in ids] == [
            "executed"
        ] * len(ids)

    await wait_for(all_held, 30, "the first worker to hold every task")
    held = {i: (await store.get_task(i, store.clock.now())).fence for i in ids}

    async def all_dialled() -> bool:  # each leg is stored before it is dialled
        return len(await store.calls(client_id=client)) == len(ids)

    await wait_for(all_dialled, 30, "the first worker to store every leg")
    doomed.kill()  # SIGKILL: no goodbye, leases left behind
    doomed.wait(timeout=10)
    assert [(await store.get_task(i, store.clock.now())).stored_status for i in ids] == [
        "executed"
    ] * len(ids)

    rescuer = deployment.start_worker(**lease)

    async def all_finished() -> bool:
        return [(await store.get_task(i, store.clock.now())).stored_status for i in ids] == [
            "finished"
        ] * len(ids)

    await wait_for(all_finished, 60, "the second worker to finish the tasks")
    assert list(stop_all([rescuer])) == [0]
    for task_id in ids:
        task = await store.get_task(task_id, store.clock.now())
        assert (task.finish_result, task.attempt, task.tries_used) == ("success", 2, 2)
        events = [e.type for e in await store.events_for_task(task_id)]
        assert events.count("task.finished") == 1
        assert "task.retry_scheduled" in events  # the reaper's "worker lost"
        # the dead worker's leg is in the history, closed by the reaper
        states = sorted((c.attempt, c.state) for c in await store.calls(task_id=task_id))
        assert states == [(1, "interrupted"), (2, "ended")]
    # a late write from the dead worker's lease is refused
    for task_id, fence in held.items():
        task = await store.get_task(task_id, store.clock.now())
        state = RetryState(task.kind, 1, 0, 0, task.max_tries, 0, None, 0.0, task.event_seq)
        late = decide(state, AttemptResult(True, Outcome.ANSWERED), clock.now(), random.Random())
        assert await store.complete(
            [Completion(task_id, fence, late, late.events)], store.clock.now()
        ) == [False]
        assert (await store.get_task(task_id, store.clock.now())).attempt == 2
