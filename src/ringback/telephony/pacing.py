"""The shared 20 ms ticker: one asyncio task per event loop drives every paced stream — RTP
sessions playing audio or faxing (:mod:`ringback.telephony.sip.media`) and T.38 sessions
(:mod:`ringback.telephony.fax.t38_session`) — so 150 calls cost one timer wake-up per frame,
not 150.

It works on absolute deadlines: a late wake-up makes the members catch up (each is told the
deadline it ticks for) rather than drift; a ticker that falls more than ``max_catch_up_s``
behind (a blocked event loop) starts again from now instead of bursting the whole backlog.
Real time on purpose: the far end plays or expects a frame every 20 ms of its clock, so the
pacing follows the event loop's clock, never the injected (maybe fake) one.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Protocol

log = logging.getLogger(__name__)

PERIOD_S = 0.020


class Paced(Protocol):
    """A stream the ticker drives."""

    def tick(self, deadline: float) -> bool:
        """Send what is due at ``deadline`` (loop time); False when there is nothing more."""

    def tick_failed(self, exc: Exception) -> None:
        """``tick`` raised: the member is dropped from the ticker and told why."""


class Ticker:
    """Calls :meth:`Paced.tick` on each member every :data:`PERIOD_S`, on absolute deadlines."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str, max_catch_up_s: float) -> None:
        self._loop = loop
        self._name = name
        self._max_catch_up_s = max_catch_up_s
        self._members: dict[Paced, None] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def members(self) -> frozenset[Paced]:
        return frozenset(self._members)

    def add(self, member: Paced) -> None:
        self._members[member] = None
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._run(), name=self._name)

    def discard(self, member: Paced) -> None:
        self._members.pop(member, None)

    async def _run(self) -> None:
        loop = self._loop
        deadline = loop.time() + PERIOD_S
        while self._members:
            delay = deadline - loop.time()
            if delay < -self._max_catch_up_s:
                deadline = loop.time()
            await asyncio.sleep(max(0.0, delay))  # real time on purpose (the module's docstring)
            for member in list(self._members):
                try:
                    more = member.tick(deadline)
                except Exception as exc:  # one broken stream must not stop the others
                    log.exception("%s: a tick failed", self._name)
                    member.tick_failed(exc)
                    more = False
                if not more:
                    self._members.pop(member, None)
            deadline += PERIOD_S


_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Ticker]] = (
    weakref.WeakKeyDictionary()
)


def ticker(name: str, max_catch_up_s: float) -> Ticker:
    """The running loop's ticker called ``name`` (made on first use)."""
    loop = asyncio.get_running_loop()
    by_name = _tickers.setdefault(loop, {})
    found = by_name.get(name)
    if found is None:
        found = by_name[name] = Ticker(loop, name, max_catch_up_s)
    return found


def existing(loop: asyncio.AbstractEventLoop, name: str) -> Ticker | None:
    """``loop``'s ticker called ``name`` if it was made (callable outside the loop)."""
    return _tickers.get(loop, {}).get(name)
