"""Rows as the store returns them, and the write requests the engine hands it.

A stored call leg (:class:`CallRow`) is built from the one CDR field list,
``ringback.domain.cdr.CDR_FIELDS``, by :func:`call_row`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ringback.domain.cdr import CDR_FIELDS, TIME_FIELDS, CallRecord
from ringback.domain.model import Decision, NewEvent, RetryState, TaskKind


def to_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


class NotFound(LookupError):
    """A client, queue or task that does not exist (or is not the caller's)."""


class Conflict(Exception):
    """The request clashes with stored state (duplicate name, task not editable, …)."""


@dataclass(slots=True)
class QueueRow:
    id: int
    client_id: int
    name: str
    comment: str
    status: str
    concurrent_task_limit: int
    max_calls_per_second: float | None
    calling_hours: dict[str, Any] | None
    last_call_at: datetime | None
    created_at: datetime
    updated_at: datetime
    task_count: int = 0
    sched_task_count: int = 0
    running_count: int = 0
    # try again when a fault on our side (worker lost or stopped) cut a call (DESIGN §4)
    redial_interrupted: bool = False


@dataclass(slots=True)
class TaskRow:
    id: int
    client_id: int
    queue_id: int
    kind: TaskKind
    name: str | None
    payload: dict[str, Any]
    status: str  # as shown: includes the derived delayed_concurrent_task
    stored_status: str
    blocked_reason: str | None
    run_at: datetime
    start_time_utc: datetime | None
    timezone: str | None
    max_tries: int
    tries_used: int
    max_caller_tries: int
    caller_tries_used: int
    backoff: dict[str, Any] | None
    caller_pause_s: float
    attempt: int
    finish_result: str | None
    finish_comment: str | None
    cdr: str | None
    lease_owner: str | None
    lease_until: datetime | None
    fence: int
    event_seq: int
    created_at: datetime
    updated_at: datetime
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    finished_at: datetime | None
    webhooks: list[dict[str, Any]] | None = None  # a job's options.webhooks


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


@dataclass(slots=True)
class EventRow:
    id: int
    client_id: int
    queue_id: int | None
    task_id: int | None
    seq: int
    type: str
    occurred_at: datetime
    data: dict[str, Any]


@dataclass(slots=True)
class CallRow:
    """A stored leg: its ``CDR_FIELDS`` and ``CALL_ROW_EXTRA`` (a test checks they agree)."""

    id: int
    call_uuid: str
    leg_uuid: str
    leg: str
    client_id: int
    queue_id: int | None
    task_id: int | None
    attempt: int | None
    direction: str
    from_number: str | None
    to_number: str
    caller_id_name: str | None
    sip_code: int | None
    outcome: str | None
    hangup_cause: str | None
    hangup_disposition: str | None
    started_at: datetime
    ringing_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    bridged_at: datetime | None
    bridged_with: str | None
    duration_ms: int | None
    billsec_ms: int | None
    played: list[dict[str, Any]]
    dtmf_received: str
    detail: dict[str, Any]
    #: kind of the task whose attempt placed the leg (None for a call of no task)
    task_kind: str | None = None
    state: str = "ended"  # dialing, answered, ended, interrupted (see LegState)
    worker: str | None = None  # the worker that placed it


#: what a stored leg's row has besides its ``CDR_FIELDS``: its id, owner, queue and task, and
#: the kind of that task (joined from the tasks table)
CALL_ROW_EXTRA: tuple[str, ...] = ("id", "client_id", "queue_id", "task_id", "task_kind")


def call_row(row: Any) -> CallRow:
    """A ``calls`` row (with ``task_kind``) as a :class:`CallRow`: times from milliseconds."""
    values = {name: getattr(row, name) for name in (*CDR_FIELDS, *CALL_ROW_EXTRA)}
    for name in TIME_FIELDS:
        values[name] = from_ms(values[name])
    return CallRow(**values)


@dataclass(slots=True)
class StatusReport:
    counts: dict[str, int]
    in_flight: int
    next_due: datetime | None
    queues: list[QueueRow]
