"""The claims SQL: the pieces of the engine's hot path (claim, complete, progress) both
databases share, and what the engine hands the drivers.

Claiming and completing run thousands of times a second. Here SQLAlchemy's statement
construction and per-row parameter processing would cost more than the database work, so these
statements are written out once per dialect and run with tuples (``exec_driver_sql``): the
fragments here are completed by each driver (``store/sqlite.py``: one statement per step on
the inline writer; ``store/postgres.py``: one round trip per step, data-modifying CTEs).

Status tests are SQL literals so that the partial indexes apply. Every statement that writes
the result of an attempt checks the task's fence (and that it is still ``executed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ringback.domain.model import EventType, NewEvent, TaskStatus
from ringback.domain.task_rules import NewTask
from ringback.store.legs_sql import dumps, ms

PENDING_SQL = "('scheduled', 'delayed', 'delayed_interval')"

#: columns every claim returns, in this order (``status``: ``finished`` when it expired)
CLAIM_COLUMNS = (
    "id, client_id, kind, payload, attempt, fence, event_seq, run_at, timezone, tries_used, "
    "caller_tries_used, max_tries, max_caller_tries, backoff, caller_pause_s, status"
)
#: the comment of a task finished because its ``expires_at`` passed
EXPIRED_COMMENT = "expired"
#: a task picked whose ``expires_at`` passed: finished instead of run (issue 18)
_EXPIRED = "(expires_at IS NOT NULL AND expires_at <= {now})"
_CLAIM_SET = (
    "status = CASE WHEN {x} THEN 'finished' ELSE 'executed' END, "
    "lease_owner = CASE WHEN {x} THEN NULL ELSE {owner} END, "
    "lease_until = CASE WHEN {x} THEN NULL ELSE {lease} END, fence = fence + 1, "
    "attempt = CASE WHEN {x} THEN attempt ELSE attempt + 1 END, event_seq = event_seq + 1, "
    "first_attempt_at = CASE WHEN {x} THEN first_attempt_at "
    "ELSE COALESCE(first_attempt_at, {now}) END, "
    "last_attempt_at = CASE WHEN {x} THEN last_attempt_at ELSE {now} END, "
    "finish_result = CASE WHEN {x} THEN 'failed' ELSE finish_result END, "
    f"finish_comment = CASE WHEN {{x}} THEN '{EXPIRED_COMMENT}' ELSE finish_comment END, "
    "finished_at = CASE WHEN {x} THEN {now} ELSE finished_at END, updated_at = {now}"
)


def claim_set(owner: str, lease: str, now: str) -> str:
    """The SET of a claim, its placeholders given: a task whose expiry passed is finished
    (failed, ``expired``), every other one leased to run."""
    return _CLAIM_SET.format(x=_EXPIRED.format(now=now), owner=owner, lease=lease, now=now)


def expired_data(attempt: int) -> str:
    """The data of the ``task.finished`` event of a task that expired."""
    return dumps({"result": "failed", "comment": EXPIRED_COMMENT, "attempts": attempt})


@dataclass(slots=True)
class Claim:
    """What to claim from one queue (its row is locked by the caller's transaction)."""

    queue_id: int
    queue_limit: int  # concurrent_task_limit
    now_ms: int
    due_ms: int  # claim tasks whose run_at is at or before this
    want: int  # at most this many (the worker's room, the queue's rate tokens)
    owner: str
    lease: int  # lease_until for the claimed tasks (ms)
    tokens: float | None  # the queue's rate tokens after refill; None without a rate limit


@dataclass(slots=True)
class TaskResult:
    """One fenced write of an attempt's end: the new task state, its events and calls."""

    task_id: int
    fence: int
    expired_before: int | None  # reaper: only if the lease ran out before this (ms)
    status: str
    run_at: int | None
    tries_used: int
    caller_tries_used: int
    attempt: int
    finish_result: str | None
    finish_comment: str | None
    cdr: str | None
    finished_at: int | None
    events: list[NewEvent]
    # call_values() tuples: stored whether or not the fence holds (a leg placed is a leg)
    calls: list[tuple[Any, ...]]


NEW_TASK_COLUMNS = (
    "id, client_id, queue_id, kind, name, payload, status, run_at, start_time_utc, timezone, "
    "max_tries, max_caller_tries, backoff, caller_pause_s, event_seq, created_at, updated_at, "
    "webhooks, expires_at, priority, timezone_source"
)
SCHEDULED = TaskStatus.SCHEDULED.value
CREATED = EventType.TASK_CREATED.value


def created_data(task: NewTask) -> dict[str, Any]:
    """The data of a new task's ``task.created`` event."""
    return {"kind": task.kind.value, "run_at": task.run_at.isoformat()}


DUE_QUEUES = (
    "SELECT id, concurrent_task_limit, max_calls_per_second, rate_tokens, rate_updated_at, "
    "calling_hours, redial_interrupted FROM queues q WHERE status = 'on' "
    "AND EXISTS (SELECT 1 FROM tasks t "
    f"WHERE t.queue_id = q.id AND t.status IN {PENDING_SQL} AND t.run_at <= {{now}}) "
)
RUNNING = "SELECT count(*) FROM tasks WHERE queue_id = {q} AND status = 'executed'"
#: the due tasks of one priority, first come first served: a range of the tasks_claim index
_DUE_OF = (
    "SELECT id, {p} AS p, run_at FROM tasks WHERE queue_id = {q} AND priority = {p} "
    f"AND status IN {PENDING_SQL} AND run_at <= {{now}} ORDER BY run_at, id LIMIT {{room}}"
)
#: up to ``room`` due tasks of queue ``q``, higher priority first, FIFO within a priority: each
#: priority's range read from the tasks_claim index (at most ``room`` entries each, never a
#: scan of tasks not due yet), then the first ``room`` of those (at most 10 x room rows)
PICK = (
    "SELECT id FROM ("
    + " UNION ALL ".join(
        f"SELECT * FROM ({_DUE_OF.replace('{p}', str(p))}) AS p{p}" for p in range(9, -1, -1)
    )
    + ") AS due ORDER BY p DESC, run_at, id LIMIT {room}"
)
CANDIDATES = (
    "SELECT id, timezone FROM tasks WHERE id IN (" + PICK + ") ORDER BY priority DESC, run_at, id"
)
TOUCH_QUEUE = (
    "UPDATE queues SET last_call_at = CASE WHEN {took} THEN {now} ELSE last_call_at END, "
    "rate_tokens = COALESCE({tokens}, rate_tokens), "
    "rate_updated_at = CASE WHEN {tokens} IS NULL THEN rate_updated_at ELSE {now} END "
    "WHERE id = {q}"
)


def event_tuple(
    task_id: int, client_id: int, queue_id: int, seq: int, event: NewEvent
) -> tuple[Any, ...]:
    return (
        client_id, queue_id, task_id, seq, event.type.value, ms(event.occurred_at),
        dumps(event.data),
    )  # fmt: skip
