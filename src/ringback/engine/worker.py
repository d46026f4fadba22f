"""The worker: claims due tasks, runs one attempt each, writes results back in batches.

One asyncio loop per process does everything:
- the claimer takes due tasks while this worker has room (``max_in_flight``) and otherwise sleeps
  until the earliest ``run_at`` (a timer, not a coarse poll), woken early by new work (an
  in-process signal on SQLite, LISTEN/NOTIFY on PostgreSQL) or by freed room;
- each attempt runs as its own asyncio task against the dialer;
- the flusher writes finished attempts (and events of running ones) in one transaction per
  batch, each fenced so that a worker that lost its lease changes nothing;
- the heartbeat extends this worker's leases in one statement; the reaper, dead workers' tasks.

Calls are written ahead (DESIGN §4): a leg is stored (``dialing``) before the dialer is asked to
place it, and only if the task is still this worker's; its answer is stored as it happens, and
its record when it ends, also when the task's result is refused. The reaper judges a dead
worker's attempt on the legs it stored (none: no try spent) and closes them ``interrupted``.
It reaps only once this worker has reached the database for two leases without a failure, so
that a lease that ran out while nobody could reach the database is not taken for a death.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from ringback.client_files import Storage
from ringback.clock import Clock, sleep_or_wake
from ringback.domain.decide import decide, lost_attempt
from ringback.domain.model import AttemptResult, EventType, NewEvent, Outcome
from ringback.engine import call_log
from ringback.engine.context import AttemptContext
from ringback.engine.legs import (
    AttemptDialer,
    LegJournal,
    LegNotStored,
    capped_result,
    suppressed_result,
)
from ringback.engine.runners import run_attempt
from ringback.engine.worker_config import WorkerConfig, WorkerMetrics, WorkerStats, worker_id
from ringback.faults import FaultReporter
from ringback.ids import new_uuid
from ringback.ivr.signing import SigningFetcher
from ringback.service.clients import ClientService, SigningKeys
from ringback.service.tasks import TaskService
from ringback.store import AttemptLegs, ClaimedTask, Completion, Progress, Store
from ringback.telephony.base import CallError, CallRecord, Dialer

log = structlog.get_logger("ringback.worker")


@dataclass(slots=True)
class _InFlight:
    claimed: ClaimedTask
    ctx: AttemptContext
    dialer: AttemptDialer
    # the lease is surely ours until then (legs are dialled only before it): when the claim or
    # the latest heartbeat that reached the database was sent, plus a lease
    held_until: datetime
    task: asyncio.Task[None] | None = None
    lost: bool = False
    unsent: list[NewEvent] = field(default_factory=list)
    writing: asyncio.Future[None] | None = None  # a write of this attempt's events under way


#: when an attempt that could not store its leg (the database was away) is tried again
STORE_RETRY_SECONDS = 1.0


class Worker:
    def __init__(
        self,
        store: Store,
        dialer: Dialer,
        storage: Storage,
        clock: Clock,
        config: WorkerConfig | None = None,
        *,
        rng: random.Random | None = None,
        owner: str | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.store = store
        self.dialer = dialer
        self.storage = storage
        self.clock = clock
        self.config = config or WorkerConfig()
        self.rng = rng or random.Random()
        self.owner = owner or worker_id()
        self.metrics = metrics
        self.stats = WorkerStats()
        self._jobs = TaskService(store, clock, storage)  # where IVRs run by this worker add jobs
        # and what they fetch URLs with: signed with the client's signing secret
        self._signing = SigningKeys(ClientService(store, clock))
        self._fetchers: dict[int, SigningFetcher] = {}  # per client: no state of its own
        self._in_flight: dict[int, _InFlight] = {}
        self._completions: list[Completion] = []
        self._progress: dict[int, _InFlight] = {}
        # since when this worker has reached the database without a failure (None: failing)
        self._db_ok_since: datetime | None = None
        # one line when a component starts failing, a summary every 10 s, one on recovery
        self._faults = {
            name: FaultReporter(name, log=log, monotonic=self._seconds)
            for name in ("claim", "write", "heartbeat", "reap")
        }
        self._wake = asyncio.Event()
        self._flush_wake = asyncio.Event()
        self._legs = LegJournal(self.owner, self._flush_wake.set)  # write-ahead call legs
        self._stopping = asyncio.Event()
        self._closing = False
        self._next_due: datetime | None = None
        self._blocked = False
        self._rate_until: datetime | None = None
        store.on_wake(self._wake.set)

    # --- public -----------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; in-flight attempts may end within the shutdown grace period."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Run until :meth:`stop`; then shut down gracefully."""
        log.info("worker started", owner=self.owner, dialer=self.dialer.name)
        gc.freeze()  # start-up's objects live on: collections skip them (shorter media pauses)
        self._db_ok_since = self.clock.now()  # a reaper waits a lease before its first reap
        unlisten = await self.store.listen(self._wake.set)
        flusher = asyncio.create_task(self._flusher(), name="flusher")
        maintenance = [
            asyncio.create_task(self._every(seconds, job, component))
            for seconds, job, component in (
                (self.config.lease_seconds / 3, self._heartbeat, "heartbeat"),
                (self.config.reap_every_seconds, self._reap_settled, "reap"),
                (self.config.expire_every_seconds, self.expire, "reap"),
                (self.config.counts_every_seconds, self.store.compact_status_counts, "reap"),
            )
        ]
        try:
            backoff = 0.0
            while not self._stopping.is_set():
                try:
                    await self._claim_round(self.config.lookahead_seconds)
                    backoff = 0.0
                    self._db_ok("claim")
                except Exception as exc:  # the database is away: keep the calls, try again
                    backoff = min(5.0, max(0.5, backoff * 2))
                    self._db_failed("claim", exc)
                    await self._pause(backoff)
                    continue
                await self._sleep_until_work()
        finally:
            await self._wait_in_flight()
            self._closing = True
            self._flush_wake.set()
            try:
                await asyncio.wait_for(flusher, self.config.shutdown_grace_seconds + 10)
            except TimeoutError:
                log.error("could not write every attempt result before stopping")
            for task in maintenance:
                task.cancel()
            await asyncio.gather(*maintenance, return_exceptions=True)
            await unlisten()
            log.info("worker stopped", owner=self.owner, completed=self.stats.completed)

    async def drain(self) -> int:
        """Run every task due now to its result, without background loops (tests, tools).

        Returns the number of attempts that ran.
        """
        ran = 0
        flusher = asyncio.create_task(self._flusher())  # legs are stored before they are dialled
        try:
            while True:
                started = await self._claim_round(0.0)
                ran += started
                running = [f.task for f in self._in_flight.values() if f.task and not f.task.done()]
                if running:
                    await asyncio.gather(*running)
                await self._flush_once()
                if not started and not self._in_flight:
                    return ran
        finally:
            self._closing = True
            self._flush_wake.set()
            await flusher
            self._closing = False

    async def reap(self) -> int:
        """Send tasks whose lease ran out down the retry path, judged on the legs their attempt
        stored (see :func:`~ringback.domain.decide.lost_attempt`); returns how many."""
        now = self.clock.now()

        def judge(claimed: ClaimedTask, legs: AttemptLegs) -> Completion:
            result = lost_attempt(legs.stored, legs.answered)
            decision = decide(claimed.retry, result, now, self.rng)
            return Completion(
                claimed.id,
                claimed.fence,
                decision,
                decision.events,
                expired_before=now,
                attempt=claimed.attempt,
            )

        reaped = await self.store.reap(now, judge)
        self.stats.reaped += reaped
        if reaped:
            log.warning("reaped tasks of a lost worker", count=reaped)
            self._wake.set()
        return reaped

    async def expire(self) -> bool:
        """Finish waiting tasks whose expiry passed, in bounded batches (issue 18)."""
        while await self.store.expire_tasks(self.clock.now()) >= 500:
            pass
        return True

    # --- claiming ---------------------------------------------------------------------------

    async def _claim_round(self, lookahead: float) -> int:
        started = 0
        self._wake.clear()
        while not self._stopping.is_set():
            room = self.config.max_in_flight - len(self._in_flight)
            if room <= 0:
                break
            want = min(room, self.config.claim_batch)
            now = self.clock.now()
            # real time on purpose: the metric is how long the database took to answer
            began = time.perf_counter()
            result = await self.store.claim(
                self.owner, now, want, self.config.lease_seconds, lookahead_seconds=lookahead
            )
            if self.metrics is not None:
                self.metrics.observe_claim(time.perf_counter() - began)
            self._next_due, self._rate_until = result.next_due, result.rate_limited_until
            self._blocked = result.blocked
            for claimed in result.tasks:
                self._start(claimed, now)
            started += len(result.tasks)
            if len(result.tasks) < want and not result.delayed:
                break
        return started

    def _seconds(self) -> float:
        """The clock's time in seconds (what the fault reporters measure durations with)."""
        return self.clock.now().timestamp()

    def _fetcher_for(self, client_id: int) -> SigningFetcher:
        fetcher = self._fetchers.get(client_id)
        if fetcher is None:

            async def secrets() -> list[str]:
                return await self._signing.secrets(client_id)

            fetcher = self._fetchers[client_id] = SigningFetcher(self.config.fetch, secrets)
        return fetcher

    def _start(self, claimed: ClaimedTask, now: datetime) -> None:
        self.stats.claimed += 1

        async def open_leg(record: CallRecord) -> None:
            await self._open_leg(claimed, record)

        dialer = AttemptDialer(self.dialer, self.clock, open_leg)
        ctx = AttemptContext(
            task_id=claimed.id,
            client_id=claimed.client_id,
            queue_id=claimed.queue_id,
            kind=claimed.kind,
            attempt=claimed.attempt,
            call_uuid=new_uuid(),
            payload=claimed.payload,
            dialer=dialer,
            storage=self.storage,
            clock=self.clock,
            ring_timeout_s=self.config.ring_timeout_seconds,
            on_progress=self._on_progress,
            jobs=self._jobs,
            fetcher=self._fetcher_for(claimed.client_id),
        )
        flight = _InFlight(claimed, ctx, dialer, now + timedelta(seconds=self.config.lease_seconds))
        self._in_flight[claimed.id] = flight
        flight.task = asyncio.create_task(self._attempt(flight))

    async def _sleep_until_work(self) -> None:
        if self._stopping.is_set():
            return
        now = self.clock.now()
        delay = self.config.idle_poll_seconds
        if self._blocked:
            # due work exists but every queue that has it is full (or being claimed by another
            # worker): a finished call here or elsewhere (NOTIFY) wakes us; else look again soon
            delay = self.config.blocked_poll_seconds
        elif len(self._in_flight) < self.config.max_in_flight:
            ahead = self.config.lookahead_seconds
            for when, early in ((self._next_due, ahead), (self._rate_until, 0.0)):
                if when is not None:
                    delay = min(delay, max(0.0, (when - now).total_seconds() - early))
        await self._pause(delay)

    async def _pause(self, delay: float) -> None:
        """Sleep ``delay`` on the clock, or less if woken (new work, freed room, stop)."""
        if delay <= 0:
            await asyncio.sleep(0)  # a yield to the loop, not a wait: no clock involved
            return
        await sleep_or_wake(self.clock, delay, self._wake)

    # --- attempts ---------------------------------------------------------------------------

    async def _attempt(self, flight: _InFlight) -> None:
        ctx, claimed = flight.ctx, flight.claimed
        try:
            early = (claimed.run_at - self.clock.now()).total_seconds()
            if early > 0:  # claimed ahead of time: dial at run_at, not before
                await self.clock.sleep(early)
            if self.metrics is not None:
                late = (self.clock.now() - claimed.run_at).total_seconds()
                self.metrics.observe_lateness(max(0.0, late))
            result = await run_attempt(ctx)
            if not result.originated and flight.dialer.unstored and result.retry_in_s is None:
                # nothing was dialled because the database was away: try again as soon as this
                # result can be written (it is), not after the dialer-trouble pause
                result.retry_in_s = STORE_RETRY_SECONDS
            if flight.dialer.suppressed is not None:  # e.g. an IVR's Transfer: never retried
                result = suppressed_result(result, flight.dialer.suppressed)
            elif flight.dialer.capped is not None:  # a frequency cap: wait for its moment
                result = capped_result(result, flight.dialer.capped)
        except asyncio.CancelledError:
            result = await self._abandon(flight, "attempt interrupted: worker shutting down")
            if not result.originated and not flight.lost:
                self._legs.ended(claimed, flight.dialer.failed)
                await self.store.release(self.owner, [claimed.id], self.clock.now())
                self.stats.released += 1
                self._forget(claimed.id)
                return
        except Exception as exc:  # a runner bug must not kill the worker or leak the task
            log.exception("attempt runner failed", task_id=claimed.id)
            result = await self._abandon(flight, f"internal error: {exc}")
        if flight.lost:  # no result to write, but every leg it placed is a call record
            self._legs.ended(claimed, [*flight.dialer.failed, *ctx.calls])
            self._forget(claimed.id)
            return
        # its events must be stored before its result: wait for every write of them under way
        # (a second one may start while the first is waited for; on PostgreSQL they run in
        # parallel, and a result committed first would make the later events' write refused)
        while flight.writing is not None:
            await asyncio.shield(flight.writing)
        now = self.clock.now()
        decision = decide(claimed.retry, result, now, self.rng)
        if self.metrics is not None and result.originated:
            self.metrics.count_attempt(result.outcome.value)
        calls = [*flight.dialer.failed, *ctx.calls]
        for record in calls:
            record.detail["worker"] = self.owner
            call_log.ended(claimed, record)
        self._progress.pop(claimed.id, None)
        self._completions.append(
            Completion(
                task_id=claimed.id,
                fence=claimed.fence,
                decision=decision,
                events=[*flight.unsent, *decision.events],
                calls=calls,
                cdr=ctx.call_uuid if ctx.calls else None,
                attempt=claimed.attempt,
            )
        )
        flight.unsent = []
        self._flush_wake.set()

    async def _abandon(self, flight: _InFlight, comment: str) -> AttemptResult:
        """Hang up whatever the attempt left ringing or connected and record it."""
        recorded = {rec.leg_uuid for rec in flight.ctx.calls}
        answered = False
        for call in flight.dialer.calls:
            answered = answered or call.record.answered_at is not None
            with contextlib.suppress(Exception):
                await call.hangup()
            if call.record.leg_uuid not in recorded:
                flight.ctx.record_call(call.record)
        if answered:  # cut after the callee answered: the queue's redial_interrupted decides
            return lost_attempt(len(flight.dialer.calls), answered=True, why=comment)
        return AttemptResult(
            success=False,
            outcome=Outcome.CANCELED,
            originated=bool(flight.dialer.calls),
            comment=comment,
        )

    def _on_progress(self, ctx: AttemptContext) -> None:
        flight = self._in_flight.get(ctx.task_id)
        if flight is None:
            return
        for event_type, data in ctx.progress:
            flight.unsent.append(NewEvent(event_type, self.clock.now(), data))
            if event_type is EventType.CALL_ANSWERED:
                self._store_answer(flight, data.get("leg_uuid"))
        ctx.progress.clear()
        self._progress[ctx.task_id] = flight
        self._flush_wake.set()

    # --- write-ahead legs ---------------------------------------------------------------------

    async def _open_leg(self, claimed: ClaimedTask, record: CallRecord) -> None:
        """Store the leg as ``dialing`` before it is dialled; CallError if it may not be."""
        accepted = await self._legs.open(claimed, record)
        flight = self._in_flight.get(claimed.id)
        # accepted, but the reply came after the lease may have run out (the database was out
        # of reach): a reaper may have reaped the task. Not dialled; stored as not sent
        late = accepted and flight is not None and self.clock.now() >= flight.held_until
        if flight is not None and (late or not accepted):
            flight.lost = True
            self.stats.fenced_out += 1
        if not accepted:
            raise CallError("not dialled: the task is no longer this worker's (canceled or reaped)")
        if late:
            call_log.not_placed_lease_ran_out(claimed, record)
            raise LegNotStored(
                "not dialled: this worker's lease on the task ran out before the call was "
                "stored (the database was out of reach); another worker may hold the task"
            )
        call_log.placed(claimed, record)

    def _store_answer(self, flight: _InFlight, leg_uuid: object) -> None:
        for call in flight.dialer.calls:
            if call.record.leg_uuid == leg_uuid:
                self._legs.answered(flight.claimed, call.record)
                return

    def _db_ok(self, component: str) -> None:
        if self._db_ok_since is None:
            self._db_ok_since = self.clock.now()
        self._faults[component].succeeded()

    def _db_failed(self, component: str, exc: BaseException) -> None:
        self._db_ok_since = None
        self._faults[component].failed(exc)

    async def _reap_settled(self) -> bool:
        """Reap once this worker has reached the database long enough (WorkerConfig)."""
        since = self._db_ok_since
        if since is None or (self.clock.now() - since).total_seconds() < self.config.reap_after:
            return False
        await self.reap()
        return True

    def _forget(self, task_id: int) -> None:
        self._in_flight.pop(task_id, None)
        self._progress.pop(task_id, None)
        self._wake.set()

    # --- writing back -----------------------------------------------------------------------

    async def _flusher(self) -> None:
        """Write results as they come, in up to ``parallel_writes`` transactions at once.

        After :meth:`stop`, it writes what is left and returns.
        """
        writers: set[asyncio.Task[None]] = set()
        while True:
            await self._flush_wake.wait()
            self._flush_wake.clear()
            while len(writers) >= self.store.parallel_writes:
                await asyncio.wait(writers, return_when=asyncio.FIRST_COMPLETED)
            writer = asyncio.create_task(self._write_safely())
            writers.add(writer)
            writer.add_done_callback(writers.discard)
            if self._closing:
                await asyncio.gather(*writers)
                if not self._completions and not self._progress and not self._legs.pending:
                    return

    async def _write_safely(self) -> None:
        try:
            await self._flush_once()
            self._db_ok("write")
        except Exception as exc:  # kept in memory; written when the database is back
            self._db_failed("write", exc)
            await self.clock.sleep(1.0)
            self._flush_wake.set()

    async def _flush_once(self) -> None:
        """Write what is waiting: legs, then events of running attempts, then results. Each
        batch is taken just before it is written, and a batch that fails is put back: a
        failed write never drops the batches after it."""
        # an answer whose leg's record is about to be written with its result is not written
        # on its own (the record has the answer): one update fewer for short calls
        ending = {rec.leg_uuid for c in self._completions for rec in c.calls}
        legs = self._legs.take(superseded=ending)
        if legs:
            await self._legs.store(self.store, legs)
        progress = [f for f in self._progress.values() if f.unsent and not f.lost]
        self._progress.clear()
        if progress:
            await self._write_progress(progress)
        completions, self._completions = self._completions, []
        if completions:
            await self._write_completions(completions)

    async def _write_progress(self, flights: list[_InFlight]) -> None:
        items = [Progress(f.claimed.id, f.claimed.fence, f.unsent) for f in flights]
        done = asyncio.get_running_loop().create_future()
        for flight in flights:
            flight.unsent = []
            flight.writing = done
        try:
            applied = await self.store.record_progress(items)
        except BaseException:
            for flight, item in zip(flights, items, strict=True):  # keep them for the next try
                flight.unsent[:0] = item.events
                self._progress[flight.claimed.id] = flight
            raise
        finally:
            done.set_result(None)
            for flight in flights:
                if flight.writing is done:
                    flight.writing = None
        for flight, ok in zip(flights, applied, strict=True):
            if not ok:
                self._lose(flight)

    async def _write_completions(self, completions: list[Completion]) -> None:
        try:
            async with self._legs.carrying(r.leg_uuid for c in completions for r in c.calls):
                applied = await self.store.complete(completions, self.clock.now())
        except BaseException:
            self._completions[:0] = completions  # keep them for the next try
            raise
        for completion, ok in zip(completions, applied, strict=True):
            self._forget(completion.task_id)
            if ok:
                self.stats.completed += 1
            else:
                self.stats.fenced_out += 1
                log.warning("attempt result refused: lease lost", task_id=completion.task_id)

    def _lose(self, flight: _InFlight) -> None:
        """The task was canceled or reaped under us: stop the attempt, write nothing."""
        flight.lost = True
        self.stats.fenced_out += 1
        if flight.task is not None and not flight.task.done():
            flight.task.cancel()

    async def _heartbeat(self) -> bool:
        if not self._in_flight:
            return False
        sent, flights = self.clock.now(), list(self._in_flight.values())
        await self.store.heartbeat(
            self.owner, sent, self.config.lease_seconds, [f.claimed.id for f in flights]
        )
        held_until = sent + timedelta(seconds=self.config.lease_seconds)
        for flight in flights:  # those no longer ours were not extended: their opens fail
            if flight.held_until < held_until:
                flight.held_until = held_until
        return True

    async def _every(
        self, seconds: float, job: Callable[[], Awaitable[bool]], component: str
    ) -> None:
        """Run ``job`` every ``seconds``; it says whether it reached the database."""
        while True:
            await self.clock.sleep(seconds)
            try:
                reached = await job()
            except Exception as exc:
                self._db_failed(component, exc)
            else:
                if reached:
                    self._db_ok(component)

    async def _wait_in_flight(self) -> None:
        grace = self.config.shutdown_grace_seconds
        pending = [f.task for f in self._in_flight.values() if f.task and not f.task.done()]
        if not pending:
            return
        log.info("waiting for in-flight calls", count=len(pending), grace_s=grace)
        _, still = await asyncio.wait(pending, timeout=grace)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)


__all__ = ["Worker", "WorkerConfig", "WorkerMetrics", "WorkerStats", "worker_id"]
