"""Rows as the store returns them, and the write requests the engine hands it.

A stored call leg (:class:`CallRow`) is built from the one CDR field list,
``ringback.domain.cdr.CDR_FIELDS``, by :func:`call_row`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ringback.domain.cdr import CDR_FIELDS, TIME_FIELDS, CallRecord
from ringback.domain.model import Decision, NewEvent, RetryState, TaskKind
from ringback.domain.rows import (
    CALL_ROW_EXTRA,
    CallRow,
    Conflict,
    EventRow,
    MetricsCounts,
    NotFound,
    QueueRow,
    StatusReport,
    TaskRow,
)

__all__ = [  # the shared rows are defined in domain/rows.py; the store's modules import them here
    "CALL_ROW_EXTRA",
    "CallRow",
    "ClaimResult",
    "ClaimedTask",
    "Completion",
    "Conflict",
    "EventRow",
    "MetricsCounts",
    "NotFound",
    "Progress",
    "QueueRow",
    "StatusReport",
    "TaskRow",
    "call_row",
    "from_ms",
    "to_ms",
]  # fmt: skip


def to_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(slots=True)
class ClaimedTask:
    """A task this worker now holds: run one attempt, then write back with ``fence``."""

    id: int
    client_id: int
    queue_id: int
    kind: TaskKind
    payload: dict[str, Any]
    attempt: int
    fence: int
    event_seq: int  # the task.started event just written has this number
    retry: RetryState
    run_at: datetime  # when it was due: lateness = claim time - run_at


@dataclass(slots=True)
class ClaimResult:
    tasks: list[ClaimedTask]
    delayed: int  # tasks moved to their next calling-hours window
    next_due: datetime | None  # earliest run_at still waiting in a switched-on queue
    rate_limited_until: datetime | None  # a queue has due work but no token until then
    blocked: bool = False  # due work left unclaimed: queues at their limit or locked by others


@dataclass(slots=True)
class Completion:
    """The end of an attempt (or a lost lease), applied only if ``fence`` still holds."""

    task_id: int
    fence: int
    decision: Decision
    events: list[NewEvent]  # in order; sequence numbers follow the stored event_seq
    calls: list[CallRecord] = field(default_factory=list)
    cdr: str | None = None
    expired_before: datetime | None = None  # reaper: only if the lease ran out before this
    attempt: int = 0  # the attempt whose legs ``calls`` are (0: the decision's)


@dataclass(slots=True)
class Progress:
    """Events that happened during an attempt still running (e.g. call.answered)."""

    task_id: int
    fence: int
    events: list[NewEvent]


def call_row(row: Any) -> CallRow:
    """A ``calls`` row (with ``task_kind``) as a :class:`CallRow`: times from milliseconds."""
    values = {name: getattr(row, name) for name in (*CDR_FIELDS, *CALL_ROW_EXTRA)}
    for name in TIME_FIELDS:
        values[name] = from_ms(values[name])
    return CallRow(**values)
