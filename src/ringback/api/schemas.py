"""Request and response bodies of the HTTP API.

Requests refuse unknown fields. Times are accepted as ``YYYY-MM-DD HH:MM:SS`` (UTC) or ISO 8601
with a zone, and returned as ``YYYY-MM-DD HH:MM:SS`` (UTC). The queue bodies are in
``queue_schemas``, the shared base in ``base_schemas``; both are re-exported here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ringback.api import campaign_schemas as campaign
from ringback.api.amd_schemas import AmdOut
from ringback.api.base_schemas import MAX_ID as MAX_ID
from ringback.api.base_schemas import SeedTime, Storable, StrictIn
from ringback.api.base_schemas import errors as errors
from ringback.api.base_schemas import reject_unstorable as reject_unstorable
from ringback.api.error_body import ApiError
from ringback.api.fax_links import FaxOut
from ringback.api.queue_schemas import CallingHoursSpec as CallingHoursSpec
from ringback.api.queue_schemas import QueueCreate as QueueCreate
from ringback.api.queue_schemas import QueueListOut as QueueListOut
from ringback.api.queue_schemas import QueueOut as QueueOut
from ringback.api.queue_schemas import QueueUpdate as QueueUpdate
from ringback.api.queue_schemas import Window as Window
from ringback.api.queue_schemas import hours_dict as hours_dict
from ringback.api.task_view import CALL_OUT_FIELDS as CALL_OUT_FIELDS
from ringback.api.task_view import CALL_OUT_HIDDEN as CALL_OUT_HIDDEN
from ringback.api.task_view import CALL_OUT_RENAMED as CALL_OUT_RENAMED
from ringback.api.task_view import new_task_campaign_fields, own_fields, task_fields
from ringback.api.task_view import task_json as task_json
from ringback.domain.model import TaskStatus
from ringback.domain.rows import CallRow, QueueRow, TaskRow
from ringback.domain.task_rules import NewTask, format_seed_time, parse_utc_time
from ringback.domain.tasks import READ_BACK, Backoff, CallbackTask, IvrCallData, MsgCallData
from ringback.service import MAX_TASKS_PER_REQUEST

TaskStatusName = Literal[
    "scheduled", "executed", "delayed", "delayed_interval", "delayed_concurrent_task", "finished"
]
StoredStatus = Literal["scheduled", "executed", "delayed", "delayed_interval", "finished"]
JobState = Literal["waiting", "delayed", "active", "completed", "failed"]
_UTC = "UTC, YYYY-MM-DD HH:MM:SS"


# --- tasks ----------------------------------------------------------------------------------


class TaskBatchIn(StrictIn):
    """Callback tasks to add to a queue, all or nothing."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tasks": [
                        {"name": "order-1042", "a_number": "+33612345678",
                         "b_number": "+33198765432", "try_count": 3, "try_again_pause": 120},
                        {"name": "order-1043", "a_number": "+33687654321",
                         "b_number": "+33198765432",
                         "start_time_utc": "2030-05-01 07:30:00",
                         "url_after": "https://crm.example.com/hooks/callback-done"},
                    ]
                }
            ]
        }
    )  # fmt: skip
    tasks: list[CallbackTask] = Field(
        min_length=1, max_length=MAX_TASKS_PER_REQUEST,
        description="1 to 10,000 callback tasks; one invalid task refuses the whole request "
        "(422 naming it) and nothing is added",
    )  # fmt: skip


TaskPut = Annotated[CallbackTask, Storable]


class CallOut(BaseModel):
    """One leg of an attempt."""

    model_config = ConfigDict(populate_by_name=True)
    call_uuid: str = Field(description="the call (every leg of one attempt shares it)")
    leg_uuid: str = Field(description="this leg")
    leg: str = Field(description="main (msg_call / ivr_call), a / b (callback), transfer")
    attempt: int | None = Field(description="the task's attempt that placed it (1 = first)")
    from_: str | None = Field(alias="from", description="caller id number shown on this leg")
    to: str = Field(description="the number this leg called")
    sip_code: int | None = Field(description="final SIP response code; null if none came")
    outcome: str | None = Field(
        description="answered, busy, no_answer, rejected, invalid_number, failed or canceled; "
        "null while undecided"
    )
    hangup_cause: str | None = Field(description="hangup cause, e.g. NORMAL_CLEARING")
    hangup_disposition: str | None = Field(
        description="send_bye, recv_bye, send_cancel, …, interrupted"
    )
    state: str = Field(
        "ended",
        description="dialing (stored, being placed), answered (up), ended, or interrupted "
        "(its worker was lost: closed by the reaper with what was known)",
    )
    start_time_utc: SeedTime = Field(description=f"when it was dialled, {_UTC}")
    ring_time_utc: SeedTime | None = Field(description=f"when it rang, {_UTC}; null: never")
    answer_time_utc: SeedTime | None = Field(description=f"when it answered, {_UTC}; null: never")
    end_time_utc: SeedTime | None = Field(description=f"when it ended, {_UTC}; null: not yet")
    bridged_time_utc: SeedTime | None = Field(
        description=f"when it was connected to the other leg (callback), {_UTC}; null: never"
    )
    duration: int | None = Field(description="seconds from start to end; null: not ended")
    billsec: int | None = Field(description="seconds from answer to end (0 if never answered)")
    played: list[dict[str, Any]] = Field(description="what was played or sent on the leg")
    dtmf_received: str = Field(description="DTMF digits the callee pressed, in order")
    fax: FaxOut | None = Field(
        None, description="the fax (SendFax / ReceiveFax) with download links; null if none"
    )
    amd: AmdOut | None = Field(
        None, description="answering-machine detection (the task's amd policy); null: none ran"
    )


class CallbackParamsOut(BaseModel):
    """A callback's call parameters as given (see CallbackParams)."""

    extended_a_numbers: list[str] = Field(
        [], description="more A numbers rung at the same time as a_number"
    )
    caller_id_name: str | None = Field(None, description="caller name shown; null: none")
    caller_id_number: str | None = Field(
        None, description="caller id of the A and B legs; null: the defaults"
    )
    dst_dtmf: str | None = Field(None, description="DTMF sent to B once it answered; null: none")


class JobWebhookOut(BaseModel):
    url: str = Field(description="the URL that receives the job's events")
    events: list[str] = Field(description="the event types or patterns it receives")


class JobOptionsOut(BaseModel):
    """A job's options as stored."""

    attempts: int = Field(description="total number of tries including the first")
    backoff: Backoff | None = Field(description="the wait between tries; null: none")
    timezone: str | None = Field(
        description="IANA zone the job named for the queue's calling hours; null: none named "
        "(the task's timezone says the zone it got)"
    )
    webhooks: list[JobWebhookOut] = Field([], description="URLs that receive the job's events")


_CB = "callback tasks; null for jobs"


def _cb(text: str) -> Any:
    """A callback task field as given (null for msg_call / ivr_call jobs)."""
    return Field(None, description=f"{text} ({_CB})")


_TASK_EXAMPLE: dict[str, Any] = {
    "id": 311, "scheduler_id": 7, "kind": "callback", "name": "order-1042",
    "status": "finished", "blocked_reason": None, "finish_result": "success",
    "finish_comment": "A and B connected", "cdr": "6f1c2a9e-5b7d-4e0a-9c1f-2d3e4f5a6b7c",
    "attempt": 1, "tries_used": 1, "caller_tries_used": 0, "next_run_at": None,
    "create_date_utc": "2030-05-01 07:29:58", "finish_date_utc": "2030-05-01 07:31:12",
    "timezone": "Europe/Paris", "try_count": 3, "a_number": "+33612345678",
    "b_number": "+33198765432", "extension_id": None, "try_again_pause": 120.0,
    "try_count_caller": 0, "try_again_pause_caller": 60.0, "url_before": None,
    "url_before_again": None, "url_success": None,
    "url_after": "https://crm.example.com/hooks/callback-done",
    "start_time_utc": "2030-05-01 07:30:00",
    "callback_params": {"extended_a_numbers": [], "caller_id_name": "Example Shop",
                        "caller_id_number": "+33900000000", "dst_dtmf": None},
    "variables": {"order": "1042"}, "attempts_src_ani_numbers": [],
    "attempts_dst_ani_numbers": [], "data": None, "options": None, "calls": [],
}  # fmt: skip


class TaskOut(campaign.TaskCampaignOut):
    """A task. Callback tasks carry the callback task fields; msg_call / ivr_call jobs carry
    ``data`` and ``options`` instead (their callback fields are null)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_TASK_EXAMPLE]})
    id: int = Field(description="the task's id")
    scheduler_id: int = Field(description="the id of its queue")
    kind: Literal["callback", "msg_call", "ivr_call"] = Field(
        description="callback (a scheduler task: A, then B, connected), msg_call (a message "
        "played) or ivr_call (an IVR run)"
    )
    name: str | None = Field(description="the label given; null: none (always null for jobs)")
    status: TaskStatusName = Field(
        description="scheduled (waiting for its time), executed (an attempt is running), "
        "delayed (waiting to retry), delayed_interval (outside the queue's calling hours, "
        "moved to the next opening), delayed_concurrent_task (due, but its queue is at its "
        "concurrency limit; worked out when read, so list filters cannot select it), "
        "finished"
    )
    blocked_reason: str | None = Field(
        description="why a waiting task does not run: queue_off, concurrent_task_limit or "
        "calling_hours; null otherwise"
    )
    finish_result: Literal["success", "failed"] | None = Field(
        description="success or failed once finished (a canceled task is failed); null before"
    )
    finish_comment: str | None = Field(
        description="what happened, in words (e.g. 'A and B connected', 'busy (SIP 486); "
        "attempts exhausted (3 of 3)', 'canceled'); while waiting to retry, why the last "
        "attempt failed; null if nothing happened yet"
    )
    cdr: str | None = Field(
        description="call_uuid of the latest attempt that placed a call (GET "
        "/call_history/{call_uuid}); null: no call yet"
    )
    attempt: int = Field(
        description="number of the latest attempt (1 = first; 0: never started); an attempt "
        "that placed no call is given back"
    )
    tries_used: int = Field(description="tries of try_count / options.attempts spent")
    caller_tries_used: int = Field(description="tries of try_count_caller spent (callback)")
    next_run_at: SeedTime | None = Field(
        description=f"when it is due to run next, {_UTC}; null once finished"
    )
    create_date_utc: SeedTime = Field(description=f"when it was added, {_UTC}")
    finish_date_utc: SeedTime | None = Field(
        description=f"when it finished, {_UTC}; null: not finished"
    )
    timezone: str | None = Field(
        description="IANA zone the queue's calling hours are read in for this task: the one "
        "given, else derived from the number called, else the queue's (timezone_source says "
        "which); null: the queue's, or it has no calling hours"
    )
    try_count: int = Field(
        description="total number of tries allowed including the first (options.attempts for jobs)"
    )
    a_number: str | None = _cb("the A party, rung first")
    b_number: str | None = _cb("the B party, rung once A answered")
    extension_id: int | None = _cb("the integer given, not acted on")
    try_again_pause: float | None = _cb("seconds between tries")
    try_count_caller: int | None = _cb("tries allowed for reaching A; 0: off")
    try_again_pause_caller: float | None = _cb("seconds to wait after A was not reached")
    url_before: str | None = _cb("URL receiving task.started of the first attempt")
    url_before_again: str | None = _cb("URL receiving task.started of later attempts")
    url_success: str | None = _cb("URL receiving task.finished with success")
    url_after: str | None = _cb("URL receiving task.finished and task.canceled")
    start_time_utc: SeedTime | None = Field(
        None, description=f"the earliest start given, {_UTC}; null: none ({_CB})"
    )
    callback_params: CallbackParamsOut | None = _cb("caller ids, more A numbers, DTMF for B")
    variables: dict[str, str] | None = _cb("variables handed to the telephony backend")
    attempts_src_ani_numbers: list[str] | None = _cb("caller id of the A legs per attempt")
    attempts_dst_ani_numbers: list[str] | None = _cb("caller id of the B leg per attempt")
    data: MsgCallData | IvrCallData | None = Field(
        None, description="the job's data as given (msg_call / ivr_call; null for callbacks)"
    )
    options: JobOptionsOut | None = Field(
        None, description="the job's options (msg_call / ivr_call; null for callbacks)"
    )
    calls: list[CallOut] = Field(description="every leg of every attempt, oldest first")


def task_out(row: TaskRow, calls: list[CallRow]) -> TaskOut:
    return TaskOut.model_validate(task_fields(row, calls), context=READ_BACK)


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
            **own_fields(task, fmt),
            **new_task_campaign_fields(task, queue, now),
        }
        if full and task.run_at <= now:  # as the store reports it when read
            item["status"] = TaskStatus.DELAYED_CONCURRENT_TASK.value
            item["blocked_reason"] = "concurrent_task_limit"
        out.append(item)
    return out


class TaskBatchOut(BaseModel):
    tasks: list[TaskOut] = Field(description="the tasks added, in the order sent")


_TOTAL = Field(description="how many match the filters, all pages")
_LIMIT = Field(description="the page size asked (1 to 1000, default 100)")
_OFFSET = Field(description="how many matches were skipped (default 0)")


class TaskListOut(BaseModel):
    tasks: list[TaskOut] = Field(description="one page of the queue's tasks, by id")
    total: int = _TOTAL
    limit: int = _LIMIT
    offset: int = _OFFSET


# --- jobs -----------------------------------------------------------------------------------


class JobOut(TaskOut):
    """A msg_call / ivr_call task with its BullMQ-style ``state`` and ``attemptsMade``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_TASK_EXAMPLE,
                    "id": 312, "kind": "msg_call", "name": None, "status": "delayed",
                    "finish_result": None, "finish_comment": "busy (SIP 486)",
                    "attempt": 1, "tries_used": 1, "next_run_at": "2030-05-01 07:32:12",
                    "finish_date_utc": None, "timezone": None, "try_count": 3,
                    **dict.fromkeys(("a_number", "b_number", "try_again_pause",
                                     "try_count_caller", "try_again_pause_caller",
                                     "url_after", "start_time_utc", "callback_params",
                                     "variables", "attempts_src_ani_numbers",
                                     "attempts_dst_ani_numbers")),
                    "data": {"calling_number": "+33900000000",
                             "called_number": "+33612345678",
                             "audio_file": "audio/hello.wav"},
                    "options": {"attempts": 3, "timezone": None, "webhooks": [],
                                "backoff": {"type": "exponential", "delay": 60000,
                                            "jitter": 0.2}},
                    "state": "delayed", "attemptsMade": 1,
                }
            ]
        }
    )  # fmt: skip
    state: JobState = Field(
        description="waiting (due, not running yet: queue off or full included), delayed "
        "(waiting for a time: delay, backoff, calling hours), active (running), completed "
        "(finished, success) or failed (finished, failed)"
    )
    attemptsMade: int = Field(  # BullMQ's name
        description="attempts that ended (the running one is not counted)"
    )


def job_state(row: TaskRow, now: datetime) -> JobState:
    """BullMQ's states: waiting for a time (delay, backoff, calling hours) is ``delayed``;
    due but not running yet (queue off or full included) is ``waiting``."""
    if row.stored_status == "executed":
        return "active"
    if row.stored_status == "finished":
        return "completed" if row.finish_result == "success" else "failed"
    return "delayed" if row.run_at > now else "waiting"


def job_out(row: TaskRow, calls: list[CallRow], now: datetime) -> JobOut:
    fields = task_fields(row, calls)
    fields["state"] = job_state(row, now)
    fields["attemptsMade"] = row.attempt - (1 if row.stored_status == "executed" else 0)
    return JobOut.model_validate(fields)


class JobListOut(BaseModel):
    jobs: list[JobOut] = Field(description="one page of the client's jobs, by id")
    total: int = _TOTAL
    limit: int = _LIMIT
    offset: int = _OFFSET


# --- auth and service -----------------------------------------------------------------------


class TokenOut(BaseModel):
    access_token: str = Field(description="send it as Authorization: Bearer <token>")
    token_type: Literal["Bearer"] = Field("Bearer", description="always Bearer")
    expires_in: int = Field(description="seconds the token stays valid")
    scope: Literal["all"] = Field("all", description="always all")


class RotatedOut(BaseModel):
    """Shown once: the new secret is stored only hashed."""

    id: int = Field(description="the client's number (in API paths)")
    client_id: str = Field(description="the OAuth client id (unchanged)")
    client_secret: str = Field(description="the new secret; tokens issued before stop working")
    secret_version: int = Field(description="goes up at every rotation")
    signing_secret: str = Field(
        description="the new signing secret; the previous one still signs for 24 hours"
    )


class HealthOut(BaseModel):
    status: Literal["ok"] = Field("ok", description="always ok while the process answers")


class ReadyCheck(BaseModel):
    ok: bool = Field(description="true: this check passed")
    detail: str = Field(description="what was found, or what is wrong")


class ReadyOut(BaseModel):
    """Whether this process can do its work, check by check."""

    status: Literal["ready", "not ready"] = Field(description="ready only if every check is ok")
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
