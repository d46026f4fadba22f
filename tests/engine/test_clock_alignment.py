"""Leases are judged on one clock, the database server's (DESIGN §4): a process reads it at
start and every minute (:class:`~ringback.clock.AlignedClock`), so a host whose own clock runs
ahead does not reap tasks still running on another host."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


def _database(host: FakeClock, ahead_s: float, trips: list[float]) -> Any:
    """A database clock ``ahead_s`` ahead of ``host``, read with these round trips (seconds),
    each reading taken half-way through its trip."""

    async def read() -> datetime:
        trip = trips.pop(0)
        host.advance(trip / 2)
        reading = host.now() + timedelta(seconds=ahead_s)
        host.advance(trip / 2)
        return reading

    return read


async def test_aligned_clock_takes_the_offset_from_the_middle_of_the_shortest_round_trip() -> None:
    host = FakeClock()
    aligned = AlignedClock(host)
    # (round trip, when in it the database read its clock): the slow reading is 1.5 s off
    readings = [(4.0, 0.5), (0.02, 0.01), (0.2, 0.1)]

    async def read() -> datetime:
        trip, taken = readings.pop(0)
        host.advance(taken)
        reading = host.now() + timedelta(seconds=90)
        host.advance(trip - taken)
        return reading

    assert await aligned.align(read) == timedelta(seconds=90)
    assert aligned.now() == host.now() + timedelta(seconds=90)
    host.advance(10)
    assert aligned.now() == host.now() + timedelta(seconds=90)


async def test_a_reading_within_its_own_error_leaves_the_offset_alone() -> None:
    host = FakeClock()
    aligned = AlignedClock(host)
    # the database's own host: 1 ms off at most, 2 ms round trips: the offset stays exactly 0
    assert await aligned.align(_database(host, 0.001, [0.002] * 3)) == timedelta(0)
    # 2 minutes off, read in 10 ms: followed
    offset = await aligned.align(_database(host, 120.0, [0.01] * 3))
    assert offset == timedelta(seconds=120)


async def test_a_database_without_a_clock_of_its_own_leaves_the_offset_at_zero() -> None:
    async def no_clock() -> None:
        return None

    aligned = AlignedClock(FakeClock())
    assert await aligned.align(no_clock) == timedelta(0)


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
    assert (await store.get_task(running, store.clock.now())).stored_status == "executed"
    clock.advance(31)  # the lease really ran out
    assert await aligned.reap() == 1


async def test_database_time_is_the_servers_clock_in_utc_and_none_on_sqlite(
    store: Store,
) -> None:
    found = await store.database_time()
    if store.engine.dialect.name == "sqlite":
        assert found is None  # the file's host is this host: nothing to follow
        return
    assert found is not None and found.tzinfo is not None
    assert abs(found - datetime.now(UTC)) < timedelta(seconds=60)
