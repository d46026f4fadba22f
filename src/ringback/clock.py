"""The injected clock: real time in production, moved by hand in tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None: ...


async def sleep_until(clock: Clock, when: datetime) -> None:
    """Sleep on ``clock`` until ``when``. The wait is measured when the sleep begins: a sleep
    started as a task begins on a later turn of the loop, and by then real time has passed or a
    fake clock has been moved (by a test); a wait measured before would end that much later."""
    await clock.sleep((when - clock.now()).total_seconds())


async def sleep_or_wake(clock: Clock, seconds: float, wake: asyncio.Event) -> None:
    """Sleep ``seconds`` on ``clock``, or less if ``wake`` is set meanwhile (it stays set)."""
    when = clock.now() + timedelta(seconds=seconds)
    waiter = asyncio.ensure_future(wake.wait())
    sleeper = asyncio.ensure_future(sleep_until(clock, when))
    try:
        await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        sleeper.cancel()


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


#: the smallest change of offset an alignment makes (below it, readings are noise)
ALIGN_MIN_STEP = timedelta(milliseconds=5)


class AlignedClock:
    """Another clock moved by the offset to a reference clock: the database's.

    Workers on several hosts judge each other's leases; a host whose clock runs ahead would
    reap tasks still running elsewhere, one behind would leave dead workers' tasks waiting.
    Every process of a service reads the database server's clock (:meth:`align`, at start and
    every minute), so every timestamp it writes and every lease it judges is on that one
    clock. Each alignment takes several readings and keeps the one with the shortest round
    trip (its error is at most half of it, as in NTP), and moves the offset only when the new
    one differs by more than that error (at least :data:`ALIGN_MIN_STEP`): processes on the
    database's own host keep offset 0, so their timestamps agree to the microsecond, as they
    did before the alignment existed. A database with no clock of its own (SQLite: a file on
    this host) gives no reading, and the offset stays 0.
    """

    def __init__(self, base: Clock) -> None:
        self.base = base
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return self.base.now() + self.offset

    async def sleep(self, seconds: float) -> None:
        await self.base.sleep(seconds)

    async def align(
        self, read: Callable[[], Awaitable[datetime | None]], *, readings: int = 3
    ) -> timedelta:
        """Read the reference clock ``readings`` times with ``read`` (None: it has no clock of
        its own) and follow it as the class says; returns the offset."""
        best: tuple[timedelta, timedelta] | None = None  # (round trip, offset)
        for _ in range(readings):
            sent = self.base.now()
            reference = await read()
            received = self.base.now()
            if reference is None:
                return self.offset
            trip = received - sent
            if best is None or trip < best[0]:
                best = (trip, reference - (sent + trip / 2))
        if best is not None and abs(best[1] - self.offset) > max(best[0], ALIGN_MIN_STEP):
            self.offset = best[1]
        return self.offset


class FakeClock:
    """A clock that only moves when told to. ``sleep`` resolves once ``advance`` passes it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(
            self._sleepers, (self._now + timedelta(seconds=seconds), next(self._order), future)
        )
        await future

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    def set(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError("a FakeClock does not go backwards")
        self._now = when
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        self.set(self._now + timedelta(seconds=seconds, **delta))
        return self._now
