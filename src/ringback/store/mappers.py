"""Row mappers: the rows the repositories read, as the row types the store returns.

Rows of one subject only are mapped in that subject's module (numbers, webhooks); the ones
here are shared: queues, tasks, claimed tasks, and the JSON and time columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.engine import Row

from ringback.domain.model import PENDING_STATUSES, RetryState, TaskKind, TaskStatus
from ringback.store.records import ClaimedTask, QueueRow, TaskRow, from_ms, to_ms


def loads(value: Any) -> Any:
    """JSON columns come back as text from SQLite and already decoded from PostgreSQL."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def opt_ms(when: datetime | None) -> int | None:
    return None if when is None else to_ms(when)


def queue_row(row: Row[Any]) -> QueueRow:
    return QueueRow(
        id=row.id,
        client_id=row.client_id,
        name=row.name,
        comment=row.comment,
        status=row.status,
        concurrent_task_limit=row.concurrent_task_limit,
        max_calls_per_second=row.max_calls_per_second,
        calling_hours=row.calling_hours,
        redial_interrupted=bool(row.redial_interrupted),
        task_ttl_seconds=row.task_ttl_seconds,
        last_call_at=from_ms(row.last_call_at),
        created_at=from_ms(row.created_at),  # type: ignore[arg-type]
        updated_at=from_ms(row.updated_at),  # type: ignore[arg-type]
        task_count=int(row.task_count or 0),
        sched_task_count=int(row.sched or 0),
        running_count=int(row.running or 0),
    )


def task_row(row: Row[Any], running: int, now_ms: int) -> TaskRow:
    status, blocked = row.status, None
    if status in PENDING_STATUSES:
        if row.queue_status == "off":
            blocked = "queue_off"
        elif row.run_at <= now_ms and running >= row.concurrent_task_limit:
            status = TaskStatus.DELAYED_CONCURRENT_TASK.value
            blocked = "concurrent_task_limit"
        elif status == TaskStatus.DELAYED_INTERVAL.value:
            blocked = "calling_hours"
    return TaskRow(
        id=row.id,
        client_id=row.client_id,
        queue_id=row.queue_id,
        kind=TaskKind(row.kind),
        name=row.name,
        payload=row.payload,
        status=status,
        stored_status=row.status,
        blocked_reason=blocked,
        run_at=from_ms(row.run_at),  # type: ignore[arg-type]
        start_time_utc=from_ms(row.start_time_utc),
        timezone=row.timezone,
        max_tries=row.max_tries,
        tries_used=row.tries_used,
        max_caller_tries=row.max_caller_tries,
        caller_tries_used=row.caller_tries_used,
        backoff=row.backoff,
        caller_pause_s=row.caller_pause_s,
        attempt=row.attempt,
        finish_result=row.finish_result,
        finish_comment=row.finish_comment,
        cdr=row.cdr,
        lease_owner=row.lease_owner,
        lease_until=from_ms(row.lease_until),
        fence=row.fence,
        event_seq=row.event_seq,
        created_at=from_ms(row.created_at),  # type: ignore[arg-type]
        updated_at=from_ms(row.updated_at),  # type: ignore[arg-type]
        first_attempt_at=from_ms(row.first_attempt_at),
        last_attempt_at=from_ms(row.last_attempt_at),
        finished_at=from_ms(row.finished_at),
        webhooks=row.webhooks,
        expires_at=from_ms(row.expires_at),
        priority=row.priority,
        timezone_source=row.timezone_source,
    )


def claimed_task(
    row: Sequence[Any], queue_id: int, redial_interrupted: bool = False
) -> ClaimedTask:
    """A row of ``CLAIM_COLUMNS`` (values after the claim) as a ClaimedTask."""
    # fmt: off
    (task_id, client_id, kind_name, payload, attempt, fence, event_seq, run_at, _tz, tries_used,
     caller_tries_used, max_tries, max_caller_tries, backoff, caller_pause_s) = row[:15]
    # fmt: on
    kind = TaskKind(kind_name)
    return ClaimedTask(
        id=task_id,
        client_id=client_id,
        queue_id=queue_id,
        kind=kind,
        payload=loads(payload),
        attempt=attempt,
        fence=fence,
        event_seq=event_seq,
        run_at=datetime.fromtimestamp(run_at / 1000, UTC),
        retry=RetryState(
            kind=kind,
            attempt=attempt,
            tries_used=tries_used,
            caller_tries_used=caller_tries_used,
            max_tries=max_tries,
            max_caller_tries=max_caller_tries,
            backoff=loads(backoff),
            caller_pause_s=caller_pause_s,
            event_seq=event_seq,
            redial_interrupted=redial_interrupted,
        ),
    )
