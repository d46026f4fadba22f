"""One outbound leg over a list of trunks and their DNS targets, failing over between them.

:class:`TrunkCall` is what :meth:`SipDialer.originate` returns: one leg for the engine (one
stored leg, one call record, one attempt), placed as one :class:`SipCall` after another until
one is not a trunk failure:

- a trunk failure is a ``503``, ``408`` (the trunk's, or Timer B: no answer at all), ``429`` or
  a transport error, *before anything rang* (no 180/183): the callee was never reached, so
  the next target of the trunk (RFC 3263), then the next trunk, is tried with the ring time
  left; a call that rang, was answered, or was hung up by ringback is never placed again (no
  callee is dialled twice);
- a target that did not answer, failed to send, or answered 503 is blacklisted
  (:meth:`SipResolver.blacklist`); a ``429`` / ``503`` with ``Retry-After`` pauses its trunk
  (no new call there until then) and moves on to the next trunk.

The dialer takes the first trunk with room (and resolves its servers) before it returns the
leg: when none has room within the ring time, ``originate`` raises CallError, and the leg
counts as never placed. The record of the leg is that of the last SipCall;
``detail["trunk"]`` names its trunk, ``detail["failover"]`` lists the earlier tries (trunk,
target, reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ringback.domain.model import Outcome
from ringback.telephony.base import Call, CallError, CallRecord, OriginateRequest
from ringback.telephony.fax.result import FaxResult, ReceivedFax
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.dns import DnsError, Target
from ringback.telephony.sip.trunks import Trunk, trunk_address

if TYPE_CHECKING:
    from ringback.telephony.sip.dialer import SipDialer

log = logging.getLogger("ringback.sip")


def failover_reason(record: CallRecord) -> str | None:
    """Why the leg of ``record`` may go to the next target or trunk (None: it may not)."""
    if record.answered_at is not None or record.ringing_at is not None:
        return None
    if record.sip_code in (503, 408, 429):  # a 408 is the trunk's or Timer B's (no answer)
        return str(record.detail.get("reason") or record.sip_code)
    error = str(record.detail.get("error") or "")
    if record.hangup_disposition == "error" and not error.startswith("media:"):
        return f"transport: {error}"
    return None


class TrunkCall:
    """A :class:`~ringback.telephony.base.Call` placed over trunks with failover. Its first
    try is placed at once (the dialer found a trunk with room and its servers)."""

    def __init__(
        self,
        dialer: SipDialer,
        request: OriginateRequest,
        first: tuple[Trunk, list[Target]],
        rest: list[Trunk],
        started_at: datetime,
        on_done: Callable[[TrunkCall], None],
    ) -> None:
        self._dialer = dialer
        self._request = request
        self._started = started_at
        self._trunk, targets = first
        self._targets = list(targets[1:])  # the trunk's servers not tried yet
        self._rest = list(rest)  # the failover trunks not tried yet
        self._hangup_cause: str | None = None
        self._tries: list[dict[str, Any]] = []
        self._outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.current: SipCall = self._place(self._trunk, targets[0])
        self._task = asyncio.create_task(self._run())
        self._task.add_done_callback(lambda _task: on_done(self))

    # -- placing ------------------------------------------------------------------------------

    def _ring_left(self, trunk: Trunk) -> float:
        ring = min(self._request.ring_timeout_s, trunk.settings.max_ring_timeout_s)
        return max(0.0, ring - (self._dialer.clock.now() - self._started).total_seconds())

    def _place(self, trunk: Trunk, target: Target) -> SipCall:
        self._target = target
        call = self._dialer.place(trunk, target, self._request, self._started)
        call.start_outbound(self._ring_left(trunk))
        return call

    async def _run(self) -> None:
        try:
            outcome = await self._fail_over()
        except asyncio.CancelledError:
            self._settle_with_current()
            raise
        except Exception:  # never leave a leg hanging on a bug: it ends as its try does
            log.exception("failover of SIP leg %s failed", self.current.leg_uuid)
            self._settle_with_current()
            return
        if not self._outcome.done():
            self._outcome.set_result(outcome)

    def _settle_with_current(self) -> None:
        """The leg's outcome is its current try's, once that ends."""

        def settle(done: asyncio.Future[Outcome]) -> None:
            if not self._outcome.done():
                failed = done.cancelled() or done.exception() is not None
                self._outcome.set_result(Outcome.FAILED if failed else done.result())

        asyncio.ensure_future(self.current.wait_answer()).add_done_callback(settle)

    async def _fail_over(self) -> Outcome:
        pool, resolver = self._dialer.pool, self._dialer.resolver
        call, trunk = self.current, self._trunk
        while True:
            outcome = await call.wait_answer()
            reason = failover_reason(call.record)
            if reason is None or self._hangup_cause is not None:
                break
            target = self._target
            self._tries.append({"trunk": trunk.name, "target": str(target), "reason": reason})
            pool.states[trunk.name].failed_over += 1
            if call.record.sip_code != 429:  # 503, 408 (or no answer), a transport error
                resolver.blacklist(target, trunk.settings.blacklist_s)
            if call.record.sip_code == 429 or call.record.detail.get("retry_after_s"):
                self._targets = []  # the trunk is paused (Retry-After): spare its servers
            if self._ring_left(trunk) <= 0:
                break  # the ring time is over: no new try (it would be CANCELed at once)
            following = await self._next()
            if following is None or self._hangup_cause is not None:
                break
            trunk, next_target = following
            self._trunk = trunk
            call = self.current = self._place(trunk, next_target)
        call.record.detail["trunk"] = trunk.name
        if self._tries:
            call.record.detail["failover"] = list(self._tries)
        return outcome

    async def _next(self) -> tuple[Trunk, Target] | None:
        """The next server of this trunk, else the first of the next trunks with room whose
        name resolves (taken in the pool); None when there is none within the ring time."""
        pool, resolver = self._dialer.pool, self._dialer.resolver
        if self._targets:
            trunk = self._trunk
            if await pool.acquire([trunk], self._ring_left(trunk)) is not None:
                return trunk, self._targets.pop(0)
        while self._rest:
            taken = await pool.acquire(self._rest, self._ring_left(self._rest[0]))
            if taken is None:
                return None
            trunk = taken
            self._rest.remove(trunk)
            try:
                targets = await resolver.targets(*trunk_address(trunk))
            except DnsError as exc:
                pool.release(trunk)
                self._tries.append({"trunk": trunk.name, "reason": str(exc)})
                continue
            self._targets = targets[1:]
            return trunk, targets[0]
        return None

    # -- the Call protocol --------------------------------------------------------------------

    @property
    def record(self) -> CallRecord:
        return self.current.record

    @property
    def leg_uuid(self) -> str:
        return self.current.leg_uuid

    @property
    def ended(self) -> bool:
        return self._outcome.done() and self.current.ended

    @property
    def answered(self) -> bool:
        return self.current.answered

    def __getattr__(self, name: str) -> Any:  # the rest of SipCall (media, t38, call_id, ...)
        if name.startswith("__") or name == "current":
            raise AttributeError(name)
        return getattr(self.current, name)

    def _up(self, action: str) -> SipCall:
        if not self._outcome.done():
            raise CallError(f"cannot {action}: the call is not answered yet")
        return self.current

    async def wait_answer(self) -> Outcome:
        return await asyncio.shield(self._outcome)

    async def wait_ended(self) -> CallRecord:
        """Until the leg (its last try) has ended; its record."""
        await asyncio.shield(self._outcome)
        return await self.current.wait_ended()

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """Hang up the current try; no other try follows."""
        if self._hangup_cause is None:
            self._hangup_cause = cause
        if self.current.ended and not self._task.done():  # between tries: none follows
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.current.hangup(cause)

    async def close(self) -> None:
        """Stop placing (the dialer is closing); the current try is hung up by the dialer."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def play(self, path: Path, *, loop: int = 1, name: str | None = None) -> None:
        await self._up("play").play(path, loop=loop, name=name)

    async def speak(
        self, text: str, *, language: str | None = None, voice: str | None = None, loop: int = 1
    ) -> None:
        await self._up("speak").speak(text, language=language, voice=voice, loop=loop)

    async def wait(self, seconds: float) -> None:
        await self._up("wait").wait(seconds)

    async def collect_digits(
        self, *, max_digits: int, timeout_s: float, finish_on_key: str = "#"
    ) -> str:
        return await self._up("collect digits").collect_digits(
            max_digits=max_digits, timeout_s=timeout_s, finish_on_key=finish_on_key
        )

    async def send_dtmf(self, digits: str) -> None:
        await self._up("send DTMF").send_dtmf(digits)

    async def bridge(self, other: Call) -> None:
        if isinstance(other, TrunkCall):
            other = other.current
        await self._up("bridge").bridge(other)

    async def park(self, timeout_s: float, music: Path | None = None) -> None:
        await self._up("park").park(timeout_s, music)

    async def send_fax(
        self, path: Path, *, header: str = "", ident: str = "", name: str | None = None
    ) -> FaxResult:
        return await self._up("send a fax").send_fax(path, header=header, ident=ident, name=name)

    async def receive_fax(
        self, timeout_s: float, *, ident: str = "", name: str | None = None
    ) -> ReceivedFax:
        return await self._up("receive a fax").receive_fax(timeout_s, ident=ident, name=name)
