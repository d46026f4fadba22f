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

The record of the leg is that of the last SipCall; ``detail["trunk"]`` names its trunk,
``detail["failover"]`` lists the earlier tries (trunk, target, reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ringback.domain.model import Outcome
from ringback.telephony.base import Call, CallError, CallRecord, OriginateRequest, outbound_record
from ringback.telephony.fax.result import FaxResult, ReceivedFax
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.dns import DnsError
from ringback.telephony.sip.trunks import Trunk

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
    """A :class:`~ringback.telephony.base.Call` placed over trunks with failover."""

    def __init__(
        self,
        dialer: SipDialer,
        request: OriginateRequest,
        trunks: list[Trunk],
        on_done: Callable[[TrunkCall], None],
    ) -> None:
        self._dialer = dialer
        self._request = request
        self._trunks = trunks
        clock = dialer.clock
        self._started = clock.now()
        self._record = outbound_record(request, self._started, request.caller_id_number)
        self.current: SipCall | None = None
        self._hangup_cause: str | None = None
        self._tries: list[dict[str, Any]] = []
        self._outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run())
        self._task.add_done_callback(lambda _task: on_done(self))

    # -- placing ------------------------------------------------------------------------------

    def _ring_left(self, trunk: Trunk) -> float:
        ring = min(self._request.ring_timeout_s, trunk.settings.max_ring_timeout_s)
        return ring - (self._dialer.clock.now() - self._started).total_seconds()

    async def _run(self) -> None:
        try:
            outcome = await self._place_over_trunks()
        except asyncio.CancelledError:
            self._end_unplaced(Outcome.FAILED, "SYSTEM_SHUTDOWN", "ringback is stopping")
            raise
        except Exception as exc:  # never leave a leg hanging on a bug
            log.exception("outbound SIP leg %s failed", self._record.leg_uuid)
            outcome = self._end_unplaced(Outcome.FAILED, "NORMAL_TEMPORARY_FAILURE", str(exc))
        if not self._outcome.done():
            self._outcome.set_result(outcome)

    async def _place_over_trunks(self) -> Outcome:
        pool, resolver = self._dialer.pool, self._dialer.resolver
        left = list(self._trunks)
        while left:
            trunk = await pool.acquire(left, max(0.0, self._ring_left(left[0])))
            if trunk is None or self._hangup_cause is not None:
                break
            left.remove(trunk)
            settings = trunk.settings
            try:
                targets = await resolver.targets(
                    settings.proxy_host,
                    None if settings.srv else settings.proxy_port,
                    getattr(settings, "transport", None),
                )
            except DnsError as exc:
                pool.release(trunk)
                self._tries.append({"trunk": trunk.name, "reason": str(exc)})
                continue
            for index, target in enumerate(targets):
                if index and await pool.acquire([trunk], max(0.0, self._ring_left(trunk))) is None:
                    break
                call = self._dialer.place(trunk, target, self._request, self._started)
                call.start_outbound(max(0.0, self._ring_left(trunk)))
                self.current = call
                if self._hangup_cause is not None:
                    await call.hangup(self._hangup_cause)
                outcome = await call.wait_answer()
                reason = failover_reason(call.record)
                if reason is None or self._hangup_cause is not None:
                    call.record.detail["trunk"] = trunk.name
                    if self._tries:
                        call.record.detail["failover"] = list(self._tries)
                    return outcome
                self._tries.append({"trunk": trunk.name, "target": str(target), "reason": reason})
                pool.states[trunk.name].failed_over += 1
                if call.record.sip_code != 429:  # 503, 408 (or no answer), a transport error
                    resolver.blacklist(target, settings.blacklist_s)
                if call.record.sip_code == 429 or call.record.detail.get("retry_after_s"):
                    break  # the trunk is paused (the dialer saw Retry-After): spare its servers
        if self.current is not None and self.current.ended:
            self.current.record.detail["failover"] = list(self._tries)
            return self.current.record.outcome or Outcome.FAILED
        why = "no trunk had room within the ring time" if not self._tries else "every trunk failed"
        return self._end_unplaced(Outcome.FAILED, "NORMAL_CIRCUIT_CONGESTION", why)

    def _end_unplaced(self, outcome: Outcome, cause: str, error: str) -> Outcome:
        """End the leg as never placed (or its last try as it ended)."""
        if self.current is not None:
            return self.current.record.outcome or outcome
        record = self._record
        if self._hangup_cause is not None:
            outcome, cause = Outcome.CANCELED, self._hangup_cause
        record.outcome = outcome
        record.hangup_cause = cause
        record.hangup_disposition = "error"
        record.ended_at = self._dialer.clock.now()
        record.detail["error"] = error
        if self._tries:
            record.detail["failover"] = list(self._tries)
        return outcome

    # -- the Call protocol --------------------------------------------------------------------

    @property
    def record(self) -> CallRecord:
        return self.current.record if self.current is not None else self._record

    @property
    def leg_uuid(self) -> str:
        return self._record.leg_uuid

    @property
    def ended(self) -> bool:
        return self._outcome.done() and (self.current is None or self.current.ended)

    @property
    def answered(self) -> bool:
        return self.current is not None and self.current.answered

    def __getattr__(self, name: str) -> Any:  # the rest of SipCall (media, t38, call_id, ...)
        if name.startswith("__") or self.current is None:
            raise AttributeError(name)
        return getattr(self.current, name)

    def _up(self, action: str) -> SipCall:
        call = self.current
        if call is None or not self._outcome.done():
            raise CallError(f"cannot {action}: the call is not answered yet")
        return call

    async def wait_answer(self) -> Outcome:
        return await asyncio.shield(self._outcome)

    async def wait_ended(self) -> CallRecord:
        """Until the leg (its last try) has ended; its record."""
        await asyncio.shield(self._outcome)
        if self.current is not None:
            return await self.current.wait_ended()
        return self._record

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        if self._hangup_cause is None:
            self._hangup_cause = cause
        if self.current is not None:
            await self.current.hangup(cause)
        if not self._outcome.done():  # waiting for a trunk with room: it ends now
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            if not self._outcome.done():
                self._outcome.set_result(
                    self._end_unplaced(Outcome.CANCELED, cause, "hung up before it was placed")
                )

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
            if other.current is None:
                raise CallError("cannot bridge: the other call is not answered")
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
