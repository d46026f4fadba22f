"""Request and response bodies of the HTTP API.

Requests refuse unknown fields. Times are accepted in the seed's ``YYYY-MM-DD HH:MM:SS`` (UTC)
or ISO 8601 with a zone, and returned in the seed format.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from ringback.api import campaign_schemas as campaign
from ringback.api.errors import ApiError, ErrorBody
from ringback.api.fax_links import FaxOut, fax_view
from ringback.domain.cdr import MS_FIELDS, TIME_FIELDS, shown_fields, view_names
from ringback.domain.model import TaskKind, TaskStatus
from ringback.domain.rows import CallRow, QueueRow, TaskRow
from ringback.domain.tasks import (
    READ_BACK,
    Backoff,
    CallbackTask,
    IvrCallData,
    MsgCallData,
    NewTask,
    format_seed_time,
    parse_utc_time,
)
from ringback.service import MAX_TASKS_PER_REQUEST, InvalidInput, parse_calling_hours

SeedTime = Annotated[str, Field(description="UTC, YYYY-MM-DD HH:MM:SS")]
TaskStatusName = Literal[
    "scheduled", "executed", "delayed", "delayed_interval", "delayed_concurrent_task", "finished"
]
StoredStatus = Literal["scheduled", "executed", "delayed", "delayed_interval", "finished"]
JobState = Literal["waiting", "delayed", "active", "completed", "failed"]
MAX_ID = 2**63 - 1


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: the error codes it may answer, all with :class:`ErrorBody`.
    (400: a body that is not JSON.)"""
    return {code: {"model": ErrorBody} for code in sorted({401, 404, 422, *codes})}


def reject_unstorable(value: Any) -> None:
    """422 naming the place when ``value`` holds something the databases cannot store."""
    try:
        _storable(value)
    except ValueError as exc:
        raise ApiError(
            422, "invalid_input", str(exc), [{"loc": ["body"], "msg": str(exc)}]
        ) from None


def _storable(value: Any, where: str = "") -> Any:
    """Refuse NUL characters (PostgreSQL text cannot hold them) and integers beyond 64 bits
    (JSON columns and orjson cannot), anywhere in ``value``."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where or 'a string'} contains a NUL character")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"{where or 'a number'} is out of range")
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key, f"{where}.{key}".lstrip("."))
            _storable(item, f"{where}.{key}".lstrip("."))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _storable(item, f"{where}.{index}".lstrip("."))
    return value


def _storable_fast(value: Any) -> Any:
    """:func:`_storable`, walking the value only when its JSON (orjson, in C) may hold what it
    refuses: a NUL escape, or an integer beyond 53 bits (orjson's strict mode refuses those;
    the walk then decides). A 1,000-task request is checked in about 1 ms, not 7."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_STRICT_INTEGER)
    except TypeError:  # a large integer, or not plain JSON data: walk it
        return _storable(value)
    if b"\\u0000" in text:
        return _storable(value)
    return value


Storable = BeforeValidator(_storable)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _check_storable(cls, data: Any) -> Any:
        return _storable_fast(data)


# --- queues ---------------------------------------------------------------------------------


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: list[str] = Field(description="mon..sun, ranges like mon-fri allowed")
    start: str = Field(description="HH:MM local time")
    end: str = Field(description="HH:MM local time")


class CallingHoursSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str
    windows: list[Window]


_DAYS = "mon|tue|wed|thu|fri|sat|sun"
_DAY_ITEM = rf"(daily|\*|({_DAYS})(-({_DAYS}))?)"
_START = r"([01][0-9]|2[0-3]):[0-5][0-9]"
_END = rf"({_START}|24:00)"
_ZONES = sorted(available_timezones())
_HOURS_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["timezone", "windows"],
            "properties": {
                "timezone": {"type": "string", "enum": _ZONES},
                "windows": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["days", "start", "end"],
                        "properties": {
                            "days": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "string", "pattern": f"^{_DAY_ITEM}$"},
                            },
                            "start": {"type": "string", "pattern": f"^{_START}$"},
                            "end": {"type": "string", "pattern": f"^{_END}$"},
                        },
                    },
                },
            },
        },
        {
            "type": "string",
            "description": "compact form (more windows may follow, comma-separated)",
            "pattern": f"^({'|'.join(re.escape(z) for z in _ZONES)}) {_DAY_ITEM} {_START}-{_END}$",
        },
        {"type": "null"},
    ],
    "description": "{timezone, windows} or e.g. 'Europe/Paris mon-fri 09:00-18:00'",
}


def _calling_hours(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str | dict):
        raise ValueError("calling_hours must be an object or a string")
    try:
        return parse_calling_hours(value)
    except InvalidInput as exc:
        raise ValueError(exc.details[0]["msg"] if exc.details else exc.message) from None


CallingHoursIn = Annotated[
    CallingHoursSpec | str | None,
    BeforeValidator(_calling_hours),
    WithJsonSchema(_HOURS_SCHEMA, mode="validation"),
]


def hours_dict(value: CallingHoursSpec | str | None) -> dict[str, Any] | None:
    """The validated calling hours as stored (the validator turned a string into the object)."""
    return value.model_dump() if isinstance(value, CallingHoursSpec) else None


_NO_NUL = {"pattern": "^[^\\u0000]*$"}  # documents what _storable enforces
_NAME = {"pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"}  # and not blank
QueueName = Annotated[str, Field(min_length=1, max_length=100, json_schema_extra=_NAME)]
Comment = Annotated[str, Field(max_length=1000, json_schema_extra=_NO_NUL)]
Limit = Annotated[int, Field(ge=1, le=10_000)]
Rate = Annotated[float, Field(gt=0, le=10_000)]


class QueueCreate(_In, campaign.QueueCampaignIn):
    name: QueueName
    comment: Comment = ""
    status: Literal["on", "off"] = "off"
    concurrent_task_limit: Limit = 10
    max_calls_per_second: Rate | None = None
    calling_hours: CallingHoursIn = None
    redial_interrupted: bool = Field(
        False,
        description="Try a task again when a fault on ringback's side (a worker lost or "
        "stopped) cut its call, which the callee may have answered. Default false: such a "
        "task finishes failed and nobody is rung again unasked.",
    )


class QueueUpdate(_In, campaign.QueueCampaignIn):
    """Only the fields sent change; ``null`` clears max_calls_per_second and calling_hours
    (and leaves the other fields as they are)."""

    name: QueueName | None = None
    comment: Comment | None = None
    status: Literal["on", "off"] | None = None
    concurrent_task_limit: Limit | None = None
    max_calls_per_second: Rate | None = None
    calling_hours: CallingHoursIn = None
    redial_interrupted: bool | None = None


class QueueOut(campaign.QueueCampaignOut):
    id: int
    name: str
    comment: str
    status: Literal["on", "off"]
    concurrent_task_limit: int
    max_calls_per_second: float | None
    calling_hours: CallingHoursSpec | None
    redial_interrupted: bool
    task_count: int
    sched_task_count: int
    running_count: int
    last_call_date: SeedTime | None
    create_date_utc: SeedTime

    @classmethod
    def of(cls, row: QueueRow) -> QueueOut:
        return cls(
            id=row.id,
            name=row.name,
            comment=row.comment,
            status=row.status,
            concurrent_task_limit=row.concurrent_task_limit,
            max_calls_per_second=row.max_calls_per_second,
            calling_hours=CallingHoursSpec.model_validate(row.calling_hours)
            if row.calling_hours
            else None,
            redial_interrupted=row.redial_interrupted,
            task_ttl_seconds=row.task_ttl_seconds,
            task_count=row.task_count,
            sched_task_count=row.sched_task_count,
            running_count=row.running_count,
            last_call_date=format_seed_time(row.last_call_at),
            create_date_utc=format_seed_time(row.created_at) or "",
        )


class QueueListOut(BaseModel):
    queues: list[QueueOut]


# --- tasks ----------------------------------------------------------------------------------


class TaskBatchIn(_In):
    tasks: list[CallbackTask] = Field(min_length=1, max_length=MAX_TASKS_PER_REQUEST)


TaskPut = Annotated[CallbackTask, Storable]


class CallOut(BaseModel):
    """One leg of an attempt."""

    model_config = ConfigDict(populate_by_name=True)
    call_uuid: str
    leg_uuid: str
    leg: str
    attempt: int | None
    from_: str | None = Field(alias="from")
    to: str
    sip_code: int | None
    outcome: str | None
    hangup_cause: str | None
    hangup_disposition: str | None
    state: str = Field(
        "ended",
        description="dialing (stored, being placed), answered (up), ended, or interrupted "
        "(its worker was lost: closed by the reaper with what was known)",
    )
    start_time_utc: SeedTime
    ring_time_utc: SeedTime | None
    answer_time_utc: SeedTime | None
    end_time_utc: SeedTime | None
    bridged_time_utc: SeedTime | None
    duration: int | None = Field(description="seconds")
    billsec: int | None = Field(description="seconds, answered to end")
    played: list[dict[str, Any]]
    dtmf_received: str
    fax: FaxOut | None = Field(
        None, description="the fax (SendFax / ReceiveFax) with download links; null if none"
    )

    @classmethod
    def of(cls, call: CallRow) -> CallOut:
        values = {name: _call_out_value(f, getattr(call, f)) for f, name in CALL_OUT_FIELDS.items()}
        values["fax"] = fax_view(call.client_id, call.fax)
        return cls.model_validate(values)


#: the CDR fields ``CallOut`` names otherwise (times in ``*_time_utc``, durations in seconds)
CALL_OUT_RENAMED = view_names("utc")
#: the CDR fields a task's ``calls`` do not show (the call history shows them)
CALL_OUT_HIDDEN = frozenset({"direction", "caller_id_name", "bridged_with", "detail", "worker"})
#: CDR field -> ``CallOut`` field name
CALL_OUT_FIELDS = shown_fields(CALL_OUT_RENAMED, CALL_OUT_HIDDEN)
_EMPTY: dict[str, Any] = {"played": [], "dtmf_received": ""}


def _call_out_value(field: str, value: Any) -> Any:
    if field in TIME_FIELDS:
        return format_seed_time(value)
    if field in MS_FIELDS:
        return None if value is None else round(value / 1000)
    return _EMPTY[field] if field in _EMPTY and not value else value


class CallbackParamsOut(BaseModel):
    extended_a_numbers: list[str] = []
    caller_id_name: str | None = None
    caller_id_number: str | None = None
    dst_dtmf: str | None = None


class JobWebhookOut(BaseModel):
    url: str
    events: list[str]


class JobOptionsOut(BaseModel):
    attempts: int
    backoff: Backoff | None
    timezone: str | None
    webhooks: list[JobWebhookOut] = []


class TaskOut(campaign.TaskCampaignOut):
    """A task. Callback tasks carry the callback task fields; msg_call / ivr_call jobs carry
    ``data`` and ``options`` instead (their callback fields are null)."""

    id: int
    scheduler_id: int
    kind: Literal["callback", "msg_call", "ivr_call"]
    name: str | None
    status: TaskStatusName
    blocked_reason: str | None
    finish_result: Literal["success", "failed"] | None
    finish_comment: str | None
    cdr: str | None
    attempt: int
    tries_used: int
    caller_tries_used: int
    next_run_at: SeedTime | None
    create_date_utc: SeedTime
    finish_date_utc: SeedTime | None
    timezone: str | None
    try_count: int
    a_number: str | None = None
    b_number: str | None = None
    extension_id: int | None = None
    try_again_pause: float | None = None
    try_count_caller: int | None = None
    try_again_pause_caller: float | None = None
    url_before: str | None = None
    url_before_again: str | None = None
    url_success: str | None = None
    url_after: str | None = None
    start_time_utc: SeedTime | None = None
    callback_params: CallbackParamsOut | None = None
    variables: dict[str, str] | None = None
    attempts_src_ani_numbers: list[str] | None = None
    attempts_dst_ani_numbers: list[str] | None = None
    data: MsgCallData | IvrCallData | None = None
    options: JobOptionsOut | None = None
    calls: list[CallOut]


_CALLBACK_FIELDS = frozenset(TaskOut.model_fields) - {"data", "options", "calls"}
_NO_CALLBACK_PARAMS = CallbackParamsOut().model_dump()


def _own_fields(
    new: NewTask, fmt: Callable[[datetime | None], str | None] = format_seed_time
) -> dict[str, Any]:
    """What the client gave for a task: the callback fields, or a job's data and options."""
    payload = new.payload
    if new.kind is not TaskKind.CALLBACK:
        return {
            "data": payload,
            "options": {"attempts": new.max_tries, "backoff": new.backoff,
                        "timezone": new.timezone, "webhooks": new.webhooks or []},
        }  # fmt: skip
    fields = {key: value for key, value in payload.items() if key in _CALLBACK_FIELDS}
    fields["callback_params"] = {**_NO_CALLBACK_PARAMS, **payload.get("callback_params", {})}
    fields.setdefault("variables", {})
    fields.setdefault("attempts_src_ani_numbers", [])
    fields.setdefault("attempts_dst_ani_numbers", [])
    fields["try_count_caller"] = new.max_caller_tries
    fields["start_time_utc"] = fmt(new.start_time_utc)
    return fields


def _task_fields(row: TaskRow, calls: list[CallRow]) -> dict[str, Any]:
    finished = row.stored_status == "finished"
    new = NewTask(
        kind=row.kind, name=row.name, payload=row.payload, run_at=row.run_at,
        max_tries=row.max_tries, backoff=row.backoff, max_caller_tries=row.max_caller_tries,
        caller_pause_s=row.caller_pause_s, timezone=row.timezone,
        start_time_utc=row.start_time_utc, webhooks=row.webhooks,
    )  # fmt: skip
    return {
        "id": row.id,
        "scheduler_id": row.queue_id,
        "kind": row.kind.value,
        "name": row.name,
        "status": row.status,
        "blocked_reason": row.blocked_reason,
        "finish_result": row.finish_result,
        "finish_comment": row.finish_comment,
        "cdr": row.cdr,
        "attempt": row.attempt,
        "tries_used": row.tries_used,
        "caller_tries_used": row.caller_tries_used,
        "next_run_at": None if finished else format_seed_time(row.run_at),
        "create_date_utc": format_seed_time(row.created_at),
        "finish_date_utc": format_seed_time(row.finished_at),
        "timezone": row.timezone,
        "try_count": row.max_tries,
        "calls": [CallOut.of(call) for call in calls],
        **_own_fields(new),
        **campaign.task_campaign_fields(row),
    }


def task_out(row: TaskRow, calls: list[CallRow]) -> TaskOut:
    return TaskOut.model_validate(_task_fields(row, calls), context=READ_BACK)


def task_json(row: TaskRow, calls: list[CallRow]) -> dict[str, Any]:
    """The task as JSON exactly as the API shows it (webhook bodies carry it)."""
    return task_out(row, calls).model_dump(mode="json")


def created_tasks_json(
    ids: list[int], tasks: list[NewTask], queue: QueueRow, now: datetime
) -> list[dict[str, Any]]:
    """The JSON of tasks just added (as :class:`TaskOut`), without reading them back or
    validating 10,000 models: a new task has no attempts, calls or result yet."""
    created = format_seed_time(now)
    base: dict[str, Any] = dict.fromkeys(TaskOut.model_fields)
    base.update(
        scheduler_id=queue.id, attempt=0, tries_used=0, caller_tries_used=0, calls=[],
        create_date_utc=created, blocked_reason="queue_off" if queue.status == "off" else None,
        status=TaskStatus.SCHEDULED.value,
    )  # fmt: skip
    full = queue.status == "on" and queue.running_count >= queue.concurrent_task_limit
    seen: dict[datetime | None, str | None] = {}

    def fmt(when: datetime | None) -> str | None:  # a batch shares few distinct times
        if when not in seen:
            seen[when] = format_seed_time(when)
        return seen[when]

    out = []
    for task_id, task in zip(ids, tasks, strict=True):
        item = {
            **base,
            "id": task_id,
            "kind": task.kind.value,
            "name": task.name,
            "timezone": task.timezone,
            "try_count": task.max_tries,
            "next_run_at": fmt(task.run_at),
            **_own_fields(task, fmt),
            **campaign.new_task_campaign_fields(task, queue, now),
        }
        if full and task.run_at <= now:  # as the store reports it when read
            item["status"] = TaskStatus.DELAYED_CONCURRENT_TASK.value
            item["blocked_reason"] = "concurrent_task_limit"
        out.append(item)
    return out


class TaskBatchOut(BaseModel):
    tasks: list[TaskOut]


class TaskListOut(BaseModel):
    tasks: list[TaskOut]
    total: int
    limit: int
    offset: int


# --- jobs -----------------------------------------------------------------------------------


class JobOut(TaskOut):
    """A msg_call / ivr_call task with its BullMQ-style ``state`` and ``attemptsMade``."""

    state: JobState
    attemptsMade: int  # BullMQ's name


def job_state(row: TaskRow, now: datetime) -> JobState:
    """BullMQ's states: waiting for a time (delay, backoff, calling hours) is ``delayed``;
    due but not running yet (queue off or full included) is ``waiting``."""
    if row.stored_status == "executed":
        return "active"
    if row.stored_status == "finished":
        return "completed" if row.finish_result == "success" else "failed"
    return "delayed" if row.run_at > now else "waiting"


def job_out(row: TaskRow, calls: list[CallRow], now: datetime) -> JobOut:
    fields = _task_fields(row, calls)
    fields["state"] = job_state(row, now)
    fields["attemptsMade"] = row.attempt - (1 if row.stored_status == "executed" else 0)
    return JobOut.model_validate(fields)


class JobListOut(BaseModel):
    jobs: list[JobOut]
    total: int
    limit: int
    offset: int


# --- auth and service -----------------------------------------------------------------------


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: Literal["all"] = "all"


class RotatedOut(BaseModel):
    """Shown once: the new secret is stored only hashed."""

    id: int = Field(description="the client's number (in API paths)")
    client_id: str
    client_secret: str = Field(description="the new secret; tokens issued before stop working")
    secret_version: int
    signing_secret: str = Field(
        description="the new signing secret; the previous one still signs for 24 hours"
    )


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyCheck(BaseModel):
    ok: bool
    detail: str = Field(description="what was found, or what is wrong")


class ReadyOut(BaseModel):
    """Whether this process can do its work, check by check."""

    status: Literal["ready", "not ready"]
    checks: dict[str, ReadyCheck] = Field(
        description="database, worker (when this process runs one), webhooks"
    )


def parse_time_param(name: str, value: str | None) -> datetime | None:
    """A time query parameter; 422 naming it when it is not a time."""
    if value is None:
        return None
    try:
        return parse_utc_time(value)
    except (ValueError, OverflowError) as exc:
        raise ApiError(
            422, "invalid_input", f"invalid input: query.{name}",
            [{"loc": ["query", name], "msg": str(exc)}],
        ) from None  # fmt: skip
