"""How late the event loop runs what is due: a blocked loop (a blocking call, a full stderr
pipe, a long computation) makes every call in progress late too.

:class:`LoopStallMonitor` sleeps ``interval_s`` (10 ms) again and again and measures by how
much each wake-up came late (``time.perf_counter``). It keeps the longest stall seen since it
started (``max_stall_ms``) and the longest of the last ``window_s`` (``recent_max_stall_ms``).
Its cost: one timer wake-up per interval, a few microseconds each.

    monitor = LoopStallMonitor()
    monitor.start()
    ...
    await monitor.stop()        # logs "loop stall" max_ms=… recent_max_ms=…
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog
from structlog.typing import FilteringBoundLogger


class LoopStallMonitor:
    """The longest delay with which the running event loop woke a 10 ms sleeper."""

    def __init__(
        self,
        *,
        interval_s: float = 0.010,
        window_s: float = 10.0,
        perf_counter: Callable[[], float] = time.perf_counter,
        log: FilteringBoundLogger | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.window_s = window_s
        self._perf_counter = perf_counter
        self._log: FilteringBoundLogger = log or structlog.get_logger("ringback.stalls")
        self._max_s = 0.0
        # the longest stall of the current window and of the one before: "recent" covers
        # between one and two windows without keeping every sample
        self._window_start = perf_counter()
        self._window_max_s = 0.0
        self._previous_window_max_s = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def max_stall_ms(self) -> float:
        """The longest stall since the monitor started, in milliseconds."""
        return self._max_s * 1000

    @property
    def recent_max_stall_ms(self) -> float:
        """The longest stall of the last ``window_s`` to ``2 * window_s`` seconds, in ms."""
        self._roll(self._perf_counter())
        return max(self._window_max_s, self._previous_window_max_s) * 1000

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Stop measuring and log the longest stall (``loop stall max_ms=…``)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._log.info(
            "loop stall",
            max_ms=round(self.max_stall_ms, 1),
            recent_max_ms=round(self.recent_max_stall_ms, 1),
        )

    async def run(self) -> None:
        """Measure until cancelled."""
        clock = self._perf_counter
        self._window_start = clock()
        while True:
            asked = clock()
            # real time on purpose: what is measured is the event loop's own lag, which an
            # injected (maybe fake) clock would hide
            await asyncio.sleep(self.interval_s)
            woke = clock()
            self.record(woke - asked - self.interval_s, woke)

    def record(self, stall_s: float, now: float) -> None:
        """Count a wake-up ``stall_s`` late at ``now`` (perf_counter seconds)."""
        self._roll(now)
        if stall_s > self._window_max_s:
            self._window_max_s = stall_s
            self._max_s = max(self._max_s, stall_s)

    def _roll(self, now: float) -> None:
        if now - self._window_start < self.window_s:
            return
        # the window ended: it becomes "the one before" (or nothing, when two have passed)
        ended_long_ago = now - self._window_start >= 2 * self.window_s
        self._previous_window_max_s = 0.0 if ended_long_ago else self._window_max_s
        self._window_max_s = 0.0
        self._window_start = now
