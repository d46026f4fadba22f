"""Leases are judged on one clock, the database server's (DESIGN §4): a process reads it at
start and every minute (:class:`~ringback.clock.AlignedClock`), so a host whose own clock runs
ahead does not reap tasks still running on another host."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_durable_calls import LIVE

from ringback.clock import AlignedClock, FakeClock
from ringback.store.db import Store
from worker_env import worker_env


class _Shifted:
    """A host clock ``by`` ahead of ``base``."""

    def __init__(self, base: FakeClock, by: timedelta) -> None:
        self.base, self.by = base, by

    def now(self) -> datetime:
        return self.base.now() + self.by

    async def sleep(self, seconds: float) -> None:
        await self.base.sleep(seconds)


async def test_aligned_clock_takes_the_offset_from_the_middle_of_the_round_trip() -> None:
    host = FakeClock()
    database = host.now() + timedelta(seconds=90)

    async def read() -> datetime:
        host.advance(2)  # a 2 s round trip; the reading was taken half-way
        return database + timedelta(seconds=1)

    aligned = AlignedClock(host)
    offset = await aligned.align(read)
    assert offset == timedelta(seconds=90)
    assert aligned.now() == host.now() + timedelta(seconds=90)
    host.advance(10)
    assert aligned.now() == database + timedelta(seconds=12)


async def test_a_host_clock_ahead_by_more_than_a_lease_reaps_nothing_early_once_aligned(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    # clock is the database's; the task's lease (30 s) is taken on it by a live worker elsewhere
    env = await worker_env(store, clock, tmp_path, **LIVE)
    running = await env.msg_call()
    [held] = (await store.claim("other-host", clock.now(), 1, 30)).tasks
    assert held.id == running
    ahead = _Shifted(clock, timedelta(seconds=90))  # on its own time the lease ran out

    async def database_time() -> datetime:
        return clock.now()

    aligned_clock = AlignedClock(ahead)
    await aligned_clock.align(database_time)
    aligned = env.another_worker(clock=aligned_clock, **LIVE)
    assert await aligned.reap() == 0
    assert (await store.get_task(running)).stored_status == "executed"
    clock.advance(31)  # the lease really ran out
    assert await aligned.reap() == 1


async def test_database_time_is_the_servers_clock_in_utc(store: Store) -> None:
    found = await store.database_time()
    assert found.tzinfo is not None
    assert abs(found - datetime.now(UTC)) < timedelta(seconds=60)
