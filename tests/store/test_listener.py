"""The LISTEN connection's back-off waits on the injected clock, not on the wall clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ringback.clock import FakeClock
from ringback.store.listener import RETRY_FIRST_S, Listener

NOWHERE = "postgresql://nobody@127.0.0.1:1/nothing"  # refused at once


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_a_listener_that_cannot_connect_backs_off_on_its_clock() -> None:
    clock = FakeClock()
    listener = Listener(NOWHERE, "rb_wake", lambda: None, clock)
    listener.start()
    try:
        await _until(lambda: clock.sleepers == 1)  # the first back-off, on the fake clock
        clock.advance(RETRY_FIRST_S)  # over: it tries again, fails, backs off twice as long
        assert clock.sleepers == 0
        await _until(lambda: clock.sleepers == 1)
        clock.advance(RETRY_FIRST_S)
        await asyncio.sleep(0.1)
        assert clock.sleepers == 1  # still waiting: the second back-off is 2 * RETRY_FIRST_S
        clock.advance(RETRY_FIRST_S)
        assert clock.sleepers == 0
        await _until(lambda: clock.sleepers == 1)
        assert listener.connections == 0
    finally:
        await listener.stop()
