"""Write-ahead call legs on the worker's side (DESIGN §4; the SQL is ``store/legs_sql.py``).

:class:`AttemptDialer` is the dialer an attempt sees: before it asks the real dialer to place a
leg, it has the leg stored as ``dialing`` and waits until that is committed; a leg that cannot
be stored (the database is away, or the task is no longer this worker's) is not dialled.
:class:`LegJournal` holds the leg writes the worker's flusher has not stored yet: opens (with
the attempt waiting on each), answers, and the records of legs whose attempt result will not be
written. Answers and ends survive a failed write and go with the next one.

No two writes that carry the same leg run at once (:meth:`LegJournal.carrying`): on
PostgreSQL a worker's writes run in parallel transactions, and two that updated the same call
rows in another order deadlocked (a leg's answer in one write, its whole record with the
attempt's result in the other). The server then aborted one of them after
``deadlock_timeout`` (1 s), and a leg opened in that write was not dialled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from ringback.clock import Clock
from ringback.domain.frequency_caps import CallerIdRefused, CapDelay
from ringback.domain.model import AttemptResult, LegState, Outcome
from ringback.domain.suppression import Suppression
from ringback.ids import new_uuid
from ringback.store import ClaimedTask, LegWrite, Store
from ringback.telephony.base import (
    Call,
    CallError,
    CallRecord,
    Dialer,
    OriginateRequest,
    outbound_record,
)


class AttemptDialer:
    """The attempt's dialer: stores every leg before it is placed (write-ahead) and remembers
    the legs it placed, so that none outlives a canceled attempt."""

    __slots__ = (
        "calls", "capped", "clock", "default_caller_id", "failed", "inner", "name", "open_leg",
        "suppressed", "unstored",
    )  # fmt: skip

    def __init__(
        self, inner: Dialer, clock: Clock, open_leg: Callable[[CallRecord], Awaitable[None]]
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.clock = clock
        self.open_leg = open_leg
        self.calls: list[Call] = []
        self.failed: list[CallRecord] = []  # stored, then the dialer refused to place them
        self.unstored = False  # a leg could not be stored (the database away): not dialled
        self.suppressed: LegSuppressed | None = None  # a leg refused: on a do-not-call list
        self.capped: LegCapped | None = None  # a leg refused: a frequency cap; wait until
        # the caller id a leg that names none shows (the SIP dialer's RINGBACK_SIP_CALLER_ID):
        # checked against the client's allowed caller ids like any other; None: the trunk's
        self.default_caller_id: str | None = getattr(inner, "default_caller_id", None)

    async def originate(self, request: OriginateRequest) -> Call:
        request.leg_uuid = request.leg_uuid or new_uuid()
        # CallError when it cannot be stored (or the task is no longer ours): not dialled
        caller = request.caller_id_number or self.default_caller_id
        try:
            await self.open_leg(outbound_record(request, self.clock.now(), caller))
        except LegNotStored as exc:  # maybe stored all the same (the reply was lost): say so
            self.unstored = True
            self.failed.append(_not_sent(outbound_record(request, self.clock.now()), exc))
            raise
        except LegSuppressed as exc:  # not stored, not dialled: no call record
            self.suppressed = exc
            raise
        except LegCapped as exc:  # not stored, not dialled: the task waits, no try spent
            self.capped = exc
            raise
        try:
            call = await self.inner.originate(request)
        except CallError as exc:
            self.failed.append(_not_sent(outbound_record(request, self.clock.now()), exc))
            raise
        self.calls.append(call)
        return call

    async def close(self) -> None:  # the worker owns the real dialer
        return None


#: what the store answers an open: accepted or not, or why it was refused
_Answer = bool | Suppression | CapDelay | CallerIdRefused


class LegNotStored(CallError):
    """A leg could not be stored before dialling (the database is away): it is not dialled."""


class LegSuppressed(CallError):
    """The store refused the leg: its called number is on a do-not-call list of the task's
    client. Not dialled; the attempt's task finishes ``failed`` (the message names the list)."""

    def __init__(self, suppression: Suppression | CallerIdRefused) -> None:
        super().__init__(suppression.reason())
        self.suppression = suppression


class LegCapped(CallError):
    """The store refused the leg: a frequency cap of the task's client allows no call to its
    number before ``delay.until``. Not dialled; the task waits until then, spending no try."""

    def __init__(self, delay: CapDelay) -> None:
        super().__init__(delay.reason())
        self.delay = delay


def _not_sent(record: CallRecord, error: Exception) -> CallRecord:
    """The record of a leg that was not placed after all."""
    record.outcome, record.hangup_cause = Outcome.FAILED, "ORIGINATE_FAILED"
    record.hangup_disposition, record.ended_at = "not_sent", record.started_at
    record.detail["error"] = str(error)
    return record


class LegJournal:
    """Leg writes not stored yet, and the opens waiting for them (see the module docstring)."""

    def __init__(self, owner: str, wake: Callable[[], None]) -> None:
        self.owner = owner
        self.pending: list[LegWrite] = []
        self._wake = wake  # asks the flusher to write soon
        self._waiters: dict[str, asyncio.Future[_Answer]] = {}
        #: leg -> the end of the write under way that carries it
        self._writing: dict[str, asyncio.Future[None]] = {}

    @contextlib.asynccontextmanager
    async def carrying(self, legs: Iterable[str]) -> AsyncIterator[None]:
        """For a write of these legs: waits until no write under way carries one of them,
        then holds them until the block ends. A write waits before it holds anything and
        holds only while it is written, so two writes never wait for each other."""
        held = set(legs)
        while busy := {self._writing[leg] for leg in held if leg in self._writing}:
            await asyncio.wait(busy)
        done = asyncio.get_running_loop().create_future()
        for leg in held:
            self._writing[leg] = done
        try:
            yield
        finally:
            for leg in held:
                del self._writing[leg]
            done.set_result(None)

    def _write(self, claimed: ClaimedTask, record: CallRecord, state: LegState) -> LegWrite:
        record.detail["worker"] = self.owner
        return LegWrite(claimed.id, claimed.fence, claimed.attempt, self.owner, record, state)

    async def open(self, claimed: ClaimedTask, record: CallRecord) -> bool:
        """Store the leg as ``dialing``; whether the store accepted it (the task is still
        ours). CallError when it could not be stored; LegSuppressed when its called number is
        on a do-not-call list of the task's client."""
        waiter: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        self._waiters[record.leg_uuid] = waiter
        self.pending.append(self._write(claimed, record, LegState.DIALING))
        self._wake()
        try:
            answer = await waiter
        except Exception as exc:
            raise LegNotStored(f"not dialled: the call could not be stored first ({exc})") from exc
        finally:
            self._waiters.pop(record.leg_uuid, None)
        if isinstance(answer, Suppression | CallerIdRefused):
            raise LegSuppressed(answer)
        if isinstance(answer, CapDelay):
            raise LegCapped(answer)
        return answer

    def answered(self, claimed: ClaimedTask, record: CallRecord) -> None:
        self.pending.append(self._write(claimed, record, LegState.ANSWERED))
        self._wake()

    def ended(self, claimed: ClaimedTask, records: list[CallRecord]) -> None:
        """Store these legs' records without their attempt's result (it will not be written)."""
        self.pending.extend(self._write(claimed, r, LegState.ENDED) for r in records)
        if records:
            self._wake()

    def take(self, superseded: set[str] | None = None) -> list[LegWrite]:
        """Every pending write, less answers of the ``superseded`` legs (their records are
        about to be written whole) and of the legs a write under way carries (their records
        are being written: such an answer would only wait for that write, and the opens
        written with it too)."""
        taken, self.pending = self.pending, []
        if superseded or self._writing:
            written = (superseded or set()) | self._writing.keys()
            taken = [
                w
                for w in taken
                if w.state is not LegState.ANSWERED or w.record.leg_uuid not in written
            ]
        return taken

    async def store(self, store: Store, writes: list[LegWrite]) -> None:
        """Write a batch taken with :meth:`take`; on failure opens fail (their legs are not
        dialled) and answers and ends are kept for the next write."""
        try:
            async with self.carrying(w.record.leg_uuid for w in writes):
                accepted = await store.write_legs(writes)
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else CallError("worker stopping")
            for write in writes:
                if write.state is not LegState.DIALING:
                    self.pending.append(write)
                    continue
                waiter = self._waiters.get(write.record.leg_uuid)
                if waiter is not None and not waiter.done():
                    waiter.set_exception(error)
            raise
        for write in writes:
            if write.state is LegState.DIALING:
                waiter = self._waiters.get(write.record.leg_uuid)
                if waiter is not None and not waiter.done():
                    leg = write.record.leg_uuid
                    waiter.set_result(
                        accepted.suppressed.get(leg)
                        or accepted.capped.get(leg)
                        or accepted.refused.get(leg)
                        or leg in accepted
                    )


def suppressed_result(result: AttemptResult, refused: LegSuppressed) -> AttemptResult:
    """An attempt that had a leg refused as suppressed (a callback's B leg, an IVR's Transfer)
    fails and is not tried again, whatever its other legs did; its comment names the list."""
    if not result.success and not result.retryable:
        return result
    result.success, result.retryable = False, False
    if str(refused) not in result.comment:
        result.comment = f"{result.comment}; {refused}" if result.comment else str(refused)
    return result


def capped_result(result: AttemptResult, capped: LegCapped) -> AttemptResult:
    """An attempt that had a leg refused by a frequency cap. Nothing placed (the A leg capped):
    given back, the task waits until the cap allows the call, no try spent. A later leg capped
    (a callback's B leg after A answered): the attempt counts as any failed one, and the task
    is not tried again before the cap allows it."""
    result.retry_at = capped.delay.until
    if not result.originated:
        result.comment = str(capped)
    elif str(capped) not in result.comment:
        result.comment = f"{result.comment}; {capped}" if result.comment else str(capped)
    return result
