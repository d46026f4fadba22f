"""The leases repository: the engine's side of the store.

A worker claims due tasks (a lease, and a fence that every later write of the attempt must
match), extends its leases (heartbeat), writes the attempt's progress and its result, and
hands back what it will not run (release); a reaper sends the tasks of dead workers down the
retry path. The SQL of the hot path is each driver's (``ClaimSql``: ``store/claims.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ringback.domain.calling_hours import CallingHours
from ringback.domain.model import EventType, TaskStatus
from ringback.store import schema as t
from ringback.store.claims import (
    CLAIM_COLUMNS,
    EXPIRED_COMMENT,
    PENDING_SQL,
    Claim,
    TaskResult,
    expired_data,
)
from ringback.store.driver import Conn
from ringback.store.legs_sql import AttemptLegs, call_values
from ringback.store.mappers import claimed_task, loads, opt_ms
from ringback.store.queries import IS_RUNNING, next_due_query
from ringback.store.queues import burst
from ringback.store.records import (
    ClaimedTask,
    ClaimResult,
    Completion,
    Progress,
    from_ms,
    to_ms,
)
from ringback.store.repository import Repository
from ringback.store.tasks import transition


class LeaseRepository(Repository):
    """Claim, heartbeat, progress, complete, reap, release."""

    async def claim(
        self,
        owner: str,
        now: datetime,
        limit: int,
        lease_seconds: float,
        *,
        lookahead_seconds: float = 0.0,
    ) -> ClaimResult:
        """Take up to ``limit`` tasks due by ``now + lookahead``, oldest first, within every
        queue's limits.

        Queues are taken in turn, least recently called first. On PostgreSQL each queue row is
        locked (skipped if another worker holds it) before its running tasks are counted, so
        ``concurrent_task_limit`` holds across processes and hosts.
        """
        now_ms = to_ms(now)
        due_ms = now_ms + int(lookahead_seconds * 1000)
        lease = now_ms + int(lease_seconds * 1000)
        ops = self.driver.claims
        claimed: list[ClaimedTask] = []
        delayed = 0
        rate_wait: int | None = None
        async with self.driver.write() as conn:
            for queue in await ops.due_queues(conn, due_ms):
                queue_id, queue_limit, rate = queue[0], queue[1], queue[2]
                redial = bool(queue[6])
                calling_hours = loads(queue[5]) if queue[5] else None
                want = limit - len(claimed)
                tokens = None
                if rate:
                    tokens = _refill(rate, queue[3], queue[4], now_ms)
                    want = min(want, math.floor(tokens))
                    if want <= 0:
                        wait_ms = now_ms + math.ceil((1 - tokens) / rate * 1000)
                        rate_wait = wait_ms if rate_wait is None else min(rate_wait, wait_ms)
                        continue
                claim = Claim(queue_id, queue_limit, now_ms, due_ms, want, owner, lease, tokens)
                if calling_hours:
                    rows, moved = await self._claim_in_hours(conn, claim, calling_hours, now)
                    delayed += moved
                else:
                    rows = await ops.claim_due(conn, claim)
                live = [row for row in rows if row[15] == "executed"]
                delayed += len(rows) - len(live)  # expired: finished instead of run
                claimed.extend(claimed_task(row, queue_id, redial) for row in live)
                if len(claimed) >= limit:
                    break
            next_due = None
            if len(claimed) < limit:  # else the worker claims again at once
                next_due = (await conn.execute(next_due_query())).scalar()
        return ClaimResult(
            tasks=claimed,
            delayed=delayed,
            next_due=from_ms(next_due),
            rate_limited_until=from_ms(rate_wait),
            blocked=len(claimed) < limit
            and next_due is not None
            and next_due <= due_ms
            and rate_wait is None,
        )

    async def _claim_in_hours(
        self, conn: Conn, claim: Claim, calling_hours: dict[str, Any], now: datetime
    ) -> tuple[list[Any], int]:
        """Claim the due tasks whose calling hours are open; move the others to their window."""
        ops = self.driver.claims
        room = min(claim.want, claim.queue_limit - await ops.running(conn, claim.queue_id))
        if room <= 0:
            return [], 0
        hours = CallingHours.parse(calling_hours)
        open_ids, moved = [], 0
        for task_id, timezone in await ops.candidates(conn, claim.queue_id, claim.due_ms, room):
            if hours.is_open(now, timezone):
                open_ids.append(task_id)
            else:
                try:
                    opening = hours.next_opening(now, timezone)
                    reason = hours.delay_reason(now, opening, timezone)
                except ValueError:  # holidays leave no window open for years: look again later
                    opening, reason = now + timedelta(days=366), "calling hours do not open"
                await self._delay_to_window(conn, task_id, opening, now, reason)
                moved += 1
        rows = await ops.claim_ids(conn, claim, open_ids) if open_ids else []
        if rows or claim.tokens is not None:
            await ops.touch_queue(conn, claim, len(rows))
        return rows, moved

    async def _delay_to_window(
        self, conn: Conn, task_id: int, opening: datetime, now: datetime, reason: str
    ) -> None:
        await transition(
            conn,
            task_id,
            now,
            {"status": TaskStatus.DELAYED_INTERVAL.value, "run_at": to_ms(opening)},
            EventType.TASK_DELAYED,
            lambda _: {"reason": reason, "run_at": opening.isoformat()},
        )

    async def complete(self, completions: Sequence[Completion], now: datetime) -> list[bool]:
        """Apply attempt results whose fence still holds; returns which were applied."""
        if not completions:
            return []
        now_ms = to_ms(now)
        results = [_task_result(c, now_ms) for c in completions]
        async with self.driver.write(one_statement=True) as conn:
            accepted = await self.driver.claims.complete(conn, results, now_ms)
        return [c.task_id in accepted for c in completions]

    async def record_progress(self, items: Sequence[Progress]) -> list[bool]:
        """Write events of attempts still running, if their fence holds."""
        if not items:
            return []
        async with self.driver.write(one_statement=True) as conn:
            accepted = await self.driver.claims.progress(
                conn, [(p.task_id, p.fence, p.events) for p in items]
            )
        return [p.task_id in accepted for p in items]

    async def heartbeat(
        self, owner: str, now: datetime, lease_seconds: float, task_ids: Sequence[int]
    ) -> int:
        """Extend the leases of these tasks, which this worker runs, in one statement.

        Only the tasks the worker knows it runs: a claim that committed while its reply was
        lost (the database went away at that moment) leaves tasks leased to a worker that
        never started them; their lease must run out so that a reaper gives them back."""
        tk = t.tasks
        async with self.driver.write() as conn:
            result = await conn.execute(
                tk.update()
                .where(tk.c.id.in_(list(task_ids)), tk.c.lease_owner == owner, IS_RUNNING)
                .values(lease_until=to_ms(now) + int(lease_seconds * 1000))
            )
        return int(result.rowcount)

    async def reap(
        self,
        now: datetime,
        judge: Callable[[ClaimedTask, AttemptLegs], Completion],
        limit: int = 500,
    ) -> int:
        """Send running tasks whose lease ran out (their worker is presumed dead) down the
        retry path, in one transaction: each is judged on the legs its attempt stored, and
        those legs still open are closed as ``interrupted``. Returns how many were reaped.

        On PostgreSQL the reaped rows are locked ``FOR UPDATE``: a leg being opened for one of
        them either committed first (and is judged) or fails (and is never dialled).
        """
        tk, q = t.tasks, t.queues
        columns = [tk.c[name.strip()] for name in CLAIM_COLUMNS.split(",")]
        now_ms = to_ms(now)
        query = (
            sa.select(*columns, tk.c.queue_id, q.c.redial_interrupted)
            .join(q, q.c.id == tk.c.queue_id)
            .where(IS_RUNNING, tk.c.lease_until < now_ms)
            .order_by(tk.c.lease_until)
            .limit(limit)
        )
        query = self.driver.lock_skipping(query, tk)
        async with self.driver.write() as conn:
            rows: list[Any] = list((await conn.execute(query)).all())
            if not rows:
                return 0
            expired = [claimed_task(row[:-2], row[-2], bool(row[-1])) for row in rows]
            legs = await self.driver.legs.attempt_legs(conn, [task.id for task in expired])
            stored = {leg[0]: AttemptLegs(int(leg[1]), bool(leg[2])) for leg in legs}
            completions = [judge(task, stored.get(task.id, AttemptLegs())) for task in expired]
            results = [_task_result(c, now_ms) for c in completions]
            accepted = await self.driver.claims.complete(conn, results, now_ms)
            if accepted:
                await self.driver.legs.close(conn, sorted(accepted))
        return len(accepted)

    async def expire_tasks(self, now: datetime, limit: int = 500) -> int:
        """Finish (failed, ``expired``) up to ``limit`` waiting tasks whose ``expires_at`` has
        passed, soonest expiry first, each with its ``task.finished`` event: the tasks waiting
        far ahead that no claim will reach before then (a claim finishes a due one itself).
        Index-driven (``tasks_expiring``); returns how many."""
        tk = t.tasks
        now_ms = to_ms(now)
        waiting = sa.text(f"tasks.status IN {PENDING_SQL}")
        due = (
            sa.select(tk.c.id)
            .where(waiting, tk.c.expires_at.is_not(None), tk.c.expires_at <= now_ms)
            .order_by(tk.c.expires_at)
            .limit(limit)
        )
        done = (
            tk.update()
            .where(tk.c.id.in_(due.scalar_subquery()), waiting)
            .values(
                status="finished",
                finish_result="failed",
                finish_comment=EXPIRED_COMMENT,
                finished_at=now_ms,
                updated_at=now_ms,
                event_seq=tk.c.event_seq + 1,
            )
            .returning(tk.c.id, tk.c.client_id, tk.c.queue_id, tk.c.event_seq, tk.c.attempt)
        )
        async with self.driver.write() as conn:
            rows = (await conn.execute(done)).all()
            if rows:
                events = [
                    {"client_id": r.client_id, "queue_id": r.queue_id, "task_id": r.id,
                     "seq": r.event_seq, "type": EventType.TASK_FINISHED.value,
                     "occurred_at": now_ms, "data": loads(expired_data(r.attempt))}
                    for r in rows
                ]  # fmt: skip
                await conn.execute(t.events.insert(), events)
        return len(rows)

    async def release(self, owner: str, task_ids: Sequence[int], now: datetime) -> int:
        """Hand back claimed tasks whose attempt never started (shutdown): attempt given back."""
        if not task_ids:
            return 0
        tk = t.tasks
        async with self.driver.write() as conn:
            result = await conn.execute(
                tk.update()
                .where(tk.c.id.in_(list(task_ids)), tk.c.lease_owner == owner, IS_RUNNING)
                .values(
                    status=sa.case((tk.c.attempt > 1, "delayed"), else_="scheduled"),
                    attempt=tk.c.attempt - 1,
                    fence=tk.c.fence + 1,
                    lease_owner=None,
                    lease_until=None,
                    run_at=to_ms(now),
                    updated_at=to_ms(now),
                )
            )
            await self.driver.notify(conn)
        return int(result.rowcount)


def _refill(rate: float, tokens: float, updated_at: int, now_ms: int) -> float:
    elapsed = max(0, now_ms - int(updated_at)) / 1000
    return float(min(burst(rate), float(tokens) + elapsed * rate))


def _task_result(completion: Completion, now_ms: int) -> TaskResult:
    decision = completion.decision
    finished = decision.status is TaskStatus.FINISHED
    result = decision.finish_result
    return TaskResult(
        task_id=completion.task_id,
        fence=completion.fence,
        expired_before=opt_ms(completion.expired_before),
        status=decision.status.value,
        run_at=opt_ms(decision.run_at),
        tries_used=decision.tries_used,
        caller_tries_used=decision.caller_tries_used,
        attempt=decision.attempt,
        finish_result=result.value if finished and result else None,
        finish_comment=decision.finish_comment,
        cdr=completion.cdr,
        finished_at=now_ms if finished else None,
        events=completion.events,
        calls=[
            call_values(rec, completion.attempt or decision.attempt) for rec in completion.calls
        ],
    )
