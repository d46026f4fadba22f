"""Sleeps started as tasks end when they were meant to: a task begins on a later turn of the
loop, and a wait measured before it began (a fake clock moved meanwhile by a test, real time
passed) would end that much later. The simulator's legs, the worker's and the dispatcher's
pauses and the trunk selector sleep this way."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from ringback.clock import FakeClock, sleep_or_wake, sleep_until


async def test_a_sleep_until_started_late_still_ends_at_its_moment() -> None:
    clock = FakeClock()
    when = clock.now() + timedelta(seconds=1)
    sleeper = asyncio.ensure_future(sleep_until(clock, when))  # not begun yet
    clock.advance(2)  # moved past the moment before the task's first turn
    await asyncio.wait_for(sleeper, timeout=5)
    assert sleeper.done()


async def test_a_sleep_until_ends_at_its_moment_and_not_before() -> None:
    clock = FakeClock()
    sleeper = asyncio.ensure_future(sleep_until(clock, clock.now() + timedelta(seconds=1)))
    await asyncio.sleep(0)
    clock.advance(0.999)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(0.001)
    await asyncio.wait_for(sleeper, timeout=5)


async def test_sleep_or_wake_ends_at_its_moment_even_when_the_clock_moved_first() -> None:
    clock = FakeClock()
    pause = asyncio.ensure_future(sleep_or_wake(clock, 1.0, asyncio.Event()))
    await asyncio.sleep(0)  # the pause has measured its moment; its sleeper has not begun
    clock.advance(1)
    await asyncio.wait_for(pause, timeout=5)


async def test_sleep_or_wake_ends_early_when_woken_and_leaves_the_event_set() -> None:
    clock, wake = FakeClock(), asyncio.Event()
    pause = asyncio.ensure_future(sleep_or_wake(clock, 60.0, wake))
    await asyncio.sleep(0)
    wake.set()
    await asyncio.wait_for(pause, timeout=5)
    assert wake.is_set() and clock.sleepers == 0
