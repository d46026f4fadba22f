"""The vocabulary of ringback as plain values: task kinds, statuses, outcomes, attempt results.

Everything here is pure data; no I/O, no imports from the rest of ringback.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: the queue of a task or job that names none
DEFAULT_QUEUE = "default"


class TaskKind(enum.StrEnum):
    MSG_CALL = "msg_call"
    IVR_CALL = "ivr_call"
    CALLBACK = "callback"


class TaskStatus(enum.StrEnum):
    """The seed's statuses. ``delayed_concurrent_task`` is derived when a task is read."""

    SCHEDULED = "scheduled"
    EXECUTED = "executed"
    DELAYED = "delayed"
    DELAYED_INTERVAL = "delayed_interval"
    DELAYED_CONCURRENT_TASK = "delayed_concurrent_task"
    FINISHED = "finished"


#: statuses a worker may claim once ``run_at`` has passed
PENDING_STATUSES: tuple[str, ...] = (
    TaskStatus.SCHEDULED.value,
    TaskStatus.DELAYED.value,
    TaskStatus.DELAYED_INTERVAL.value,
)


class FinishResult(enum.StrEnum):
    SUCCESS = "success"
    FAILED = "failed"


class Outcome(enum.StrEnum):
    """Normalised result of one call leg (DESIGN §3)."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    INVALID_NUMBER = "invalid_number"
    FAILED = "failed"
    CANCELED = "canceled"


class Leg(enum.StrEnum):
    """Which leg of an attempt a call record belongs to."""

    MAIN = "main"  # the only leg of msg_call / ivr_call
    A = "a"  # callback first leg (a_number or one of extended_a_numbers)
    B = "b"  # callback second leg
    TRANSFER = "transfer"


class FailedLeg(enum.StrEnum):
    A = "a"
    B = "b"


class EventType(enum.StrEnum):
    TASK_CREATED = "task.created"
    TASK_STARTED = "task.started"  # attempt 1 -> url_before; attempt > 1 -> url_before_again
    TASK_RETRY_SCHEDULED = "task.retry_scheduled"
    TASK_DELAYED = "task.delayed"  # moved to the next calling-hours window
    TASK_FINISHED = "task.finished"  # url_after; with result success also url_success
    TASK_CANCELED = "task.canceled"
    TASK_UPDATED = "task.updated"
    CALL_ANSWERED = "call.answered"
    CALL_BRIDGED = "call.bridged"  # callback: A and B connected (url_success follows)
    CALL_ENDED = "call.ended"


@dataclass(slots=True)
class AttemptResult:
    """What one attempt produced, as the attempt runner reports it.

    ``originated`` is false when no call left ringback (nothing to count: the attempt is given
    back). ``retryable`` is false for errors no retry can fix (a missing audio file, an IVR
    document that does not parse). ``interrupted``: a fault on our side (worker lost, or a shutdown
    after the callee answered) cut a call that may have been answered; whether it is retried is
    the queue's policy
    (``RetryState.redial_interrupted``). ``retry_in_s``: when an attempt that placed no call is
    tried again (None: :data:`~ringback.domain.decide.NOT_ORIGINATED_PAUSE`); ``retry_at``: not
    before then (a frequency cap), whatever the pause.
    """

    success: bool
    outcome: Outcome
    originated: bool = True
    failed_leg: FailedLeg | None = None
    sip_code: int | None = None
    hangup_cause: str | None = None
    comment: str = ""
    retryable: bool = True
    call_uuid: str | None = None
    interrupted: bool = False
    retry_in_s: float | None = None
    retry_at: datetime | None = None  # not tried again before (a frequency cap's moment)


@dataclass(slots=True)
class RetryState:
    """The counters and policy decide() needs; a projection of a stored task."""

    kind: TaskKind
    attempt: int  # number of the attempt that just ran (1-based; the claim counted it)
    tries_used: int  # tries spent on try_count / attempts, before this attempt's result
    caller_tries_used: int  # callback only: tries spent on try_count_caller
    max_tries: int  # try_count / attempts
    max_caller_tries: int  # try_count_caller; 0 = not used
    backoff: dict[str, Any] | None  # {"type": "fixed"|"exponential", "delay": ms, "jitter": j}
    caller_pause_s: float  # try_again_pause_caller
    event_seq: int  # last event sequence number written for this task
    # the queue's policy: try again when a fault on our side cut a call (default: no)
    redial_interrupted: bool = False


class LegState(enum.StrEnum):
    """Where a stored call leg is (write-ahead: stored before it is dialled)."""

    DIALING = "dialing"  # stored, then handed to the dialer: ringing, or about to
    ANSWERED = "answered"  # the callee answered; the call is up
    ENDED = "ended"  # the leg ended and its record is complete
    INTERRUPTED = "interrupted"  # its worker died: closed by the reaper with what was known


@dataclass(slots=True)
class NewEvent:
    type: EventType
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Decision:
    """The next state of a task after an attempt (or a lost lease)."""

    status: TaskStatus
    run_at: datetime | None
    tries_used: int
    caller_tries_used: int
    attempt: int  # the attempt counter to store (given back when nothing was originated)
    finish_result: FinishResult | None = None
    finish_comment: str | None = None
    events: list[NewEvent] = field(default_factory=list)
