"""The rows the store returns, shared by every layer (the application layer, the API, the CLI,
the webhook dispatcher): owned by neither the store nor its callers, as River's row types are.
Queues (and the changes asked of one), tasks, events, calls, numbers, credentials and tokens,
webhook subscriptions, keys and deliveries (stored, being sent, and their results). The
engine's write requests (claims, completions, legs) stay in ``store/``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ringback.domain.model import TaskKind


class NotFound(LookupError):
    """A client, queue or task that does not exist (or is not the caller's)."""


class Conflict(Exception):
    """The request clashes with stored state (duplicate name, task not editable, …)."""


@dataclass(slots=True)
class InvalidInput(ValueError):
    """Bad input; ``details`` holds one entry per problem: ``{"loc": [...], "msg": ...}``."""

    message: str
    details: list[dict[str, Any]]

    def __str__(self) -> str:
        lines = [self.message]
        for detail in self.details:
            where = ".".join(str(part) for part in detail["loc"]) or "(input)"
            lines.append(f"  {where}: {detail['msg']}")
        return "\n".join(lines)


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
    task_ttl_seconds: int | None = None  # tasks added without expires_at expire this long after


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
    expires_at: datetime | None = None  # not completed by then: finished failed, expired
    priority: int = 5  # 0-9: within a queue higher is dialled first
    timezone_source: str | None = None  # given, number or queue (None: stored before)


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
    fax: dict[str, Any] | None = None  # the call's fax (``cdr.FAX_FIELDS``), if it faxed
    amd: dict[str, Any] | None = None  # answering-machine detection (``amd.AMD_FIELDS``)


#: what a stored leg's row has besides its ``CDR_FIELDS``: its id, owner, queue and task, and
#: the kind of that task (joined from the tasks table)
CALL_ROW_EXTRA: tuple[str, ...] = ("id", "client_id", "queue_id", "task_id", "task_kind")


@dataclass(slots=True)
class StatusReport:
    counts: dict[str, int]
    in_flight: int
    next_due: datetime | None
    queues: list[QueueRow]


@dataclass(slots=True)
class MetricsCounts:
    """Counts a metrics scrape reads: ``tasks`` as (client, queue, status, count),
    ``deliveries`` (webhook) as (client, status, count), by name, and when the longest-waiting
    pending delivery was due (None: none pending)."""

    tasks: list[tuple[str, str, str, int]]
    deliveries: list[tuple[str, str, int]]
    oldest_pending_delivery: datetime | None


@dataclass(slots=True)
class NumberRow:
    number: str
    client_id: int
    answer_url: str | None  # a comma-separated fallback list
    ivr_file: str | None  # a path in the client's storage
    notify_completed: bool
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class TokenOwner:
    client_id: int
    credential_id: int


@dataclass(slots=True)
class Credential:
    """An OAuth client: a ``key`` (its ``client_id``) and a hashed secret of one client."""

    id: int
    client_id: int
    key: str
    secret_hash: str
    secret_version: int = 1
    disabled_at: datetime | None = None


@dataclass(slots=True)
class CredentialRow:
    """A credential as listed to operators (no secret hash)."""

    id: int
    client_id: int
    client_name: str
    key: str
    secret_version: int
    created_at: datetime
    rotated_at: datetime | None
    disabled_at: datetime | None


@dataclass(slots=True)
class DeliveryRow:
    id: int
    event_id: int
    client_id: int
    task_id: int | None
    seq: int
    event_type: str
    target_kind: str
    subscription_id: int | None
    url: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    response_excerpt: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    dead_at: datetime | None


@dataclass(slots=True)
class SubscriptionRow:
    id: int
    client_id: int
    url: str
    events: list[str]
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    active: bool
    description: str
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class WebhookKeyRow:
    client_id: int
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    created_at: datetime
    rotated_at: datetime | None


@dataclass(slots=True)
class QueueChanges:
    name: str | None = None
    comment: str | None = None
    status: str | None = None
    concurrent_task_limit: int | None = None
    max_calls_per_second: float | None = None
    clear_max_calls_per_second: bool = False
    calling_hours: dict[str, Any] | None = None
    clear_calling_hours: bool = False
    redial_interrupted: bool | None = None
    task_ttl_seconds: int | None = None
    clear_task_ttl_seconds: bool = False


@dataclass(slots=True)
class NewDelivery:
    event_id: int
    client_id: int
    task_id: int | None
    seq: int
    event_type: str
    target_kind: str
    target_key: str
    subscription_id: int | None
    url: str
    body: str


@dataclass(slots=True)
class ClaimedDelivery:
    id: int
    fence: int
    event_id: int
    event_type: str
    target_kind: str
    url: str
    body: str
    attempts: int
    subscription_id: int | None
    client_id: int
    created_at_ms: int
    secrets: list[str]  # sign with each (the new one first during a rotation)


@dataclass(slots=True)
class DeliveryResult:
    id: int
    fence: int
    status: str  # delivered, pending (try again at next_attempt_at) or dead
    next_attempt_at_ms: int | None
    status_code: int | None
    error: str | None
    excerpt: str | None
    disable_subscription: str | None = None  # the reason, when the receiver answered 410
