"""The one way tests build a worker environment: store + client + storage + dialer + worker.

``await worker_env(store, clock, tmp_path)`` gives a :class:`WorkerEnv`: a client ``acme``, its
storage under ``tmp_path/storage`` holding ``hi.wav`` (0.5 s), the simulator in fast mode on
the store's fake clock and a :class:`Worker` (lease 30 s, seeded, owner ``test-worker``).
Options:

- ``fast=False``: the simulator keeps ring and talk time (on the clock);
- ``dialer=``: any dialer instead of the simulator (a witness around the simulator);
- ``sim_rules=``: a rules file for the simulator;
- ``wavs={"name.wav": seconds}``: the audio files stored for the client;
- ``owner=``, ``seed=`` and any :class:`WorkerConfig` field (``lease_seconds=``,
  ``shutdown_grace_seconds=``, ``idle_poll_seconds=``…).

``make_worker(store, dialer, storage, clock, ...)`` builds just the worker (any clock: the SIP
end-to-end tests use it with the system clock). ``env.another_worker(...)`` builds a second
worker on the same store, storage and clock (its own dialer or settings);
``async with env.running() as runner:`` runs ``env.worker.run()`` in the background and stops
it at the end.

Tasks: ``env.msg_call(to, **options)``, ``env.callback(queue, **fields)``; running them:
``env.worker.drain()`` (everything due now), ``env.run_until_finished(task_id)`` (drain, then
move the fake clock, until the task is finished).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from ringback.client_files import Storage
from ringback.clock import Clock, FakeClock
from ringback.engine.worker import Worker, WorkerConfig
from ringback.service import TaskService
from ringback.store.db import Store
from ringback.store.records import TaskRow
from ringback.telephony.sim import SimDialer, load_sim_rules
from support import make_wav

OK = "0901234000"  # the simulator answers
BUSY = "0901234486"  # … answers 486 Busy Here
INVALID = "0901234404"  # … answers 404
B_NUMBER = "0907777000"  # a B leg that answers
CALLER = "0506868000"

DEFAULT_WAVS: Mapping[str, float] = {"hi.wav": 0.5}


def make_worker(
    store: Store,
    dialer: Any,
    storage: Storage,
    clock: Clock,
    *,
    owner: str = "test-worker",
    seed: int = 7,
    **config: Any,
) -> Worker:
    """A worker with a seeded random source and ``config`` as its :class:`WorkerConfig`."""
    settings = WorkerConfig(**{"lease_seconds": 30, **config})
    return Worker(store, dialer, storage, clock, settings, rng=random.Random(seed), owner=owner)


@dataclass
class WorkerEnv:
    store: Store
    clock: FakeClock
    storage: Storage
    client_id: int
    service: TaskService
    worker: Worker

    def parts(self) -> dict[str, Any]:
        """The fields, for a test's own environment type built on this one."""
        return {f.name: getattr(self, f.name) for f in fields(WorkerEnv)}

    def another_worker(
        self, dialer: Any = None, *, clock: Clock | None = None, **options: Any
    ) -> Worker:
        """A second worker on this store and storage, on this clock or ``clock`` (the simulator
        in fast mode on it unless ``dialer`` is given); ``options`` as for :func:`make_worker`."""
        clock = clock or self.clock
        dialer = dialer or SimDialer(clock, load_sim_rules(None), fast=True)
        return make_worker(self.store, dialer, self.storage, clock, **options)

    @contextlib.asynccontextmanager
    async def running(self, worker: Worker | None = None) -> AsyncIterator[asyncio.Task[None]]:
        """``worker.run()`` (``self.worker`` by default) as a background task, given to the
        block; stopped and awaited (10 s at most) on exit."""
        worker = worker or self.worker
        runner = asyncio.create_task(worker.run())
        try:
            yield runner
        finally:
            worker.stop()
            await asyncio.wait_for(runner, 10)

    async def msg_call(
        self, to: str = OK, *, audio: str = "hi.wav", queue: str | None = None, **options: Any
    ) -> int:
        """Add a msg_call job (``options`` as the job's options); its task id."""
        job: dict[str, Any] = {
            "type": "msg_call",
            "data": {"calling_number": CALLER, "called_number": to, "audio_file": audio},
        }
        if queue is not None:
            job["queue"] = queue
        if options:
            job["options"] = options
        [task_id] = await self.service.add_jobs(self.client_id, [job])
        return task_id

    async def callback(self, queue: str = "default", **fields: Any) -> int:
        """Add a callback task (A answers, B answers, unless ``fields`` say otherwise) to the
        queue named ``queue``, made (switched on) if needed; its task id."""
        made = await self.store.ensure_queue(self.client_id, queue, self.clock.now(), status="on")
        task = {"a_number": OK, "b_number": B_NUMBER, **fields}
        [task_id] = await self.service.add_callback_tasks(self.client_id, made.id, [task])
        return task_id

    async def task(self, task_id: int) -> TaskRow:
        return await self.store.get_task(task_id, self.store.clock.now())

    async def start_offsets(self, task_id: int) -> list[float]:
        """Seconds from the first attempt's start to each attempt's start, per call records."""
        calls = await self.store.calls(task_id=task_id)
        starts = sorted({c.started_at for c in calls})
        return [(s - starts[0]).total_seconds() for s in starts]

    async def run_until_finished(
        self, task_id: int, step_s: float = 1.0, limit: int = 10_000
    ) -> TaskRow:
        """Drain, then move the fake clock ``step_s`` (or to the task's run_at, if later),
        until the task is finished."""
        [task] = await self.run_all_finished([task_id], step_s, limit)
        return task

    async def run_all_finished(
        self, task_ids: list[int], step_s: float = 1.0, limit: int = 10_000
    ) -> list[TaskRow]:
        clock = self.clock
        for _ in range(limit):
            await self.worker.drain()
            tasks = [await self.task(task_id) for task_id in task_ids]
            waiting = [t for t in tasks if t.stored_status != "finished"]
            if not waiting:
                return tasks
            soonest = min(t.run_at for t in waiting)
            clock.set(max(clock.now() + timedelta(seconds=step_s), soonest))
        raise AssertionError(f"tasks {task_ids} did not finish")


async def worker_env(
    store: Store,
    clock: FakeClock,
    tmp_path: Path,
    *,
    client: str = "acme",
    dialer: Any = None,
    fast: bool = True,
    sim_rules: Path | None = None,
    wavs: Mapping[str, float] = DEFAULT_WAVS,
    **worker_options: Any,
) -> WorkerEnv:
    """Client ``client`` with ``wavs`` in its storage, and a worker; see the module's doc."""
    storage = Storage(tmp_path / "storage")
    client_id = await store.ensure_client(client, clock.now())
    for name, seconds in wavs.items():
        make_wav(storage.resolve(client_id, name), seconds=seconds)
    if dialer is None:
        dialer = SimDialer(clock, load_sim_rules(sim_rules), fast=fast)
    worker = make_worker(store, dialer, storage, clock, **worker_options)
    return WorkerEnv(store, clock, storage, client_id, TaskService(store, clock), worker)


async def until(condition: Any, within: float = 30.0, what: str = "condition") -> None:
    """Wait (real time, at most ``within`` s) until ``condition()`` is true; it may return an
    awaitable. Used to wait for the system to reach a point, never as a fixed pause."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        reached = condition()
        if asyncio.iscoroutine(reached):
            reached = await reached
        if reached:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached in {within} s")
        await asyncio.sleep(0.005)
