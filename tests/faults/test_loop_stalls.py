"""The loop-stall monitor measures how late the event loop runs what is due."""

from __future__ import annotations

import asyncio
import time

from structlog.testing import capture_logs

from ringback.stalls import LoopStallMonitor


async def wait_for(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_a_loop_blocked_for_150_ms_shows_a_stall_of_about_150_ms() -> None:
    monitor = LoopStallMonitor()
    monitor.start()
    await asyncio.sleep(0)  # the monitor sleeps
    time.sleep(0.15)  # noqa: ASYNC251 - the loop blocked on purpose: what is measured
    await wait_for(lambda: monitor.max_stall_ms >= 100)
    assert 100 <= monitor.max_stall_ms < 2000
    assert monitor.recent_max_stall_ms == monitor.max_stall_ms
    with capture_logs() as logs:
        await monitor.stop()
    assert logs[0]["event"] == "loop stall"
    assert logs[0]["max_ms"] >= 100


async def test_an_idle_loop_shows_no_long_stall() -> None:
    readings = 0

    def counted() -> float:  # read once at creation, once at start, twice per wake-up
        nonlocal readings
        readings += 1
        return time.perf_counter()

    monitor = LoopStallMonitor(perf_counter=counted)
    monitor.start()
    # 30 wake-ups measured (about 0.3 s): the monitor has looked, so "no stall" means something
    await wait_for(lambda: readings >= 2 + 2 * 30)
    with capture_logs():
        await monitor.stop()
    assert monitor.max_stall_ms < 250  # 2 shared cores: generous, but far from a blocked loop


def test_the_recent_maximum_forgets_a_stall_two_windows_old_the_maximum_does_not() -> None:
    now = [0.0]
    monitor = LoopStallMonitor(window_s=10.0, perf_counter=lambda: now[0])
    monitor.record(0.200, now=1.0)
    monitor.record(0.010, now=2.0)
    now[0] = 12.0
    assert monitor.recent_max_stall_ms == 200.0  # the window before still counts
    now[0] = 33.0
    assert monitor.recent_max_stall_ms == 0.0
    assert monitor.max_stall_ms == 200.0
