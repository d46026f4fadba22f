"""The bodies ringback POSTs to webhook receivers, one model per event type, and their
documentation in the OpenAPI document's ``webhooks`` section (docs/webhooks.md).

The body is built by ``ringback.webhooks.targets.body`` from the event the service stored; the
event's ``data`` comes from where the event is made (``domain/decide.py``, ``store/``,
``engine/runners.py``). A test validates real deliveries against these models, so what is
documented is what is sent.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Header
from pydantic import BaseModel, ConfigDict, Field

from ringback.api.amd_schemas import AmdOut
from ringback.api.fax_links import FaxFields
from ringback.api.schemas import TaskOut

_ISO = "ISO 8601 with a zone (e.g. 2030-05-01T07:31:12.512000+00:00)"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskCreatedData(_Data):
    kind: Literal["callback", "msg_call", "ivr_call"] = Field(description="the task's kind")
    run_at: str = Field(description=f"when it is first due, {_ISO}")


class TaskStartedData(_Data):
    attempt: int = Field(description="the attempt starting (1 = first)")


class TaskRetryScheduledData(_Data):
    attempt: int = Field(description="the number of the attempt that failed")
    next_attempt: int = Field(
        description="the number of the next attempt (the same number when no call could be "
        "placed: that try is given back)"
    )
    run_at: str = Field(description=f"when the next attempt is due, {_ISO}")
    reason: str = Field(description="why the attempt failed, e.g. busy (SIP 486)")
    outcome: str = Field(
        description="the attempt's outcome: answered, busy, no_answer, rejected, "
        "invalid_number, failed or canceled"
    )


class TaskDelayedData(_Data):
    reason: str = Field(
        description="outside calling hours; with the holidays waited over when there are "
        "some: 'outside calling hours, holiday: Christmas (12-25)'"
    )
    run_at: str = Field(description=f"the next opening of the queue's calling hours, {_ISO}")


class TaskUpdatedData(_Data):
    run_at: str = Field(description=f"when the task is due now, {_ISO}")
    attempts: int = Field(description="the task's attempt counter")
    run_now: bool | None = Field(None, description="true when it was asked to run at once")
    reason: str | None = Field(
        None, description="calling hours changed (the queue's hours were changed or removed)"
    )


class TaskFinishedData(_Data):
    result: Literal["success", "failed"] = Field(description="the finish_result")
    comment: str = Field(description="the finish_comment, e.g. A and B connected")
    attempts: int = Field(description="attempts made")


class TaskCanceledData(_Data):
    result: Literal["failed"] = Field(description="always failed")
    comment: str = Field(description="the finish_comment (canceled)")
    attempts: int = Field(description="attempts made")


class FaxResultData(FaxFields):
    """A leg's fax (the task's ``calls[].fax`` shows it with download links)."""

    model_config = ConfigDict(extra="forbid")


class CallLegData(_Data):
    """One call leg, as the telephony backend recorded it at the event."""

    leg_uuid: str = Field(description="the leg")
    call_uuid: str = Field(description="the call (all legs of one attempt share it)")
    leg: Literal["main", "a", "b", "transfer"] = Field(
        description="main (msg_call / ivr_call), a / b (callback), transfer"
    )
    from_number: str | None = Field(description="caller id shown on the leg")
    to_number: str = Field(description="the number the leg called")
    outcome: str | None = Field(
        description="answered, busy, no_answer, rejected, invalid_number, failed or canceled; "
        "null while undecided"
    )
    sip_code: int | None = Field(description="final SIP response code; null if none came")
    hangup_cause: str | None = Field(description="hangup cause, e.g. NORMAL_CLEARING")
    hangup_disposition: str | None = Field(description="send_bye, recv_bye, send_cancel, …")
    started_at: str = Field(description=f"when it was dialled, {_ISO}")
    ringing_at: str | None = Field(description=f"when it rang, {_ISO}; null: never")
    answered_at: str | None = Field(description=f"when it answered, {_ISO}; null: never")
    bridged_at: str | None = Field(description=f"when it was connected, {_ISO}; null: never")
    bridged_with: str | None = Field(description="leg_uuid of the leg it was connected to")
    ended_at: str | None = Field(description=f"when it ended, {_ISO}; null: not yet")
    duration_s: float | None = Field(description="seconds from start to end; null: not ended")
    billsec: float | None = Field(description="seconds from answer to end; null: not ended")
    fax: FaxResultData | None = Field(
        description="the leg's fax (SendFax / ReceiveFax); null if the leg did not fax"
    )
    amd: AmdOut | None = Field(
        None, description="answering-machine detection (the task's amd policy); null: none ran"
    )


class CallBridgedData(_Data):
    call_uuid: str = Field(description="the call")
    a_leg_uuid: str = Field(description="the A leg")
    b_leg_uuid: str = Field(description="the B leg")
    bridged_at: str = Field(description=f"when A and B were connected, {_ISO}")


class _Event(BaseModel):
    id: str = Field(description="the event's id, as in Ringback-Event-Id (drop duplicates by it)")
    sequence: int = Field(description="the event's number among its task's events, from 1")
    occurred_at: str = Field(
        description="when it happened, UTC, ISO 8601 ending in Z (2030-05-01T07:31:12.512000Z)"
    )
    client_id: int = Field(description="the client's number")
    queue_id: int | None = Field(description="the task's queue")
    task: TaskOut | None = Field(
        description="the task as GET …/tasks/{id} shows it, taken when the event is "
        "dispatched (a fraction of a second after it happened); null if it could not be read"
    )
    attempt: int | None = Field(description="the attempt the event belongs to")


class _TaskEvent(_Event):
    call: None = Field(description="null (task events)")


class _CallEvent(_Event):
    call: CallLegData = Field(description="the call leg (the same as data)")


class TaskCreated(_TaskEvent):
    """A task was added."""

    type: Literal["task.created"] = Field(description="task.created")
    data: TaskCreatedData = Field(description="the event's own data")


class TaskStarted(_TaskEvent):
    """An attempt starts (the first one also goes to url_before, later ones to
    url_before_again)."""

    type: Literal["task.started"] = Field(description="task.started")
    data: TaskStartedData = Field(description="the event's own data")


class TaskRetryScheduled(_TaskEvent):
    """An attempt failed and the task waits to be tried again."""

    type: Literal["task.retry_scheduled"] = Field(description="task.retry_scheduled")
    data: TaskRetryScheduledData = Field(description="the event's own data")


class TaskDelayed(_TaskEvent):
    """The task came due outside its queue's calling hours and moved to the next opening."""

    type: Literal["task.delayed"] = Field(description="task.delayed")
    data: TaskDelayedData = Field(description="the event's own data")


class TaskUpdated(_TaskEvent):
    """The task was changed (replaced, asked to run now, or its queue's hours changed)."""

    type: Literal["task.updated"] = Field(description="task.updated")
    data: TaskUpdatedData = Field(description="the event's own data")


class TaskFinished(_TaskEvent):
    """The task finished (also to url_after; with success also to url_success)."""

    type: Literal["task.finished"] = Field(description="task.finished")
    data: TaskFinishedData = Field(description="the event's own data")


class TaskCanceled(_TaskEvent):
    """The task was canceled (also to url_after)."""

    type: Literal["task.canceled"] = Field(description="task.canceled")
    data: TaskCanceledData = Field(description="the event's own data")


class CallAnswered(_CallEvent):
    """A call leg answered."""

    type: Literal["call.answered"] = Field(description="call.answered")
    data: CallLegData = Field(description="the event's own data")


class CallBridged(_Event):
    """A callback's A and B legs were connected."""

    type: Literal["call.bridged"] = Field(description="call.bridged")
    call: CallBridgedData = Field(description="the legs connected (the same as data)")
    data: CallBridgedData = Field(description="the event's own data")


class CallEnded(_CallEvent):
    """A call leg ended."""

    type: Literal["call.ended"] = Field(description="call.ended")
    data: CallLegData = Field(description="the event's own data")


EVENT_MODELS: tuple[type[_Event], ...] = (
    TaskCreated, TaskStarted, TaskRetryScheduled, TaskDelayed, TaskUpdated, TaskFinished,
    TaskCanceled, CallAnswered, CallBridged, CallEnded,
)  # fmt: skip
WebhookEvent = Annotated[
    TaskCreated | TaskStarted | TaskRetryScheduled | TaskDelayed | TaskUpdated | TaskFinished
    | TaskCanceled | CallAnswered | CallBridged | CallEnded,
    Field(discriminator="type"),
]  # fmt: skip

_HEADERS: tuple[tuple[str, str], ...] = (
    ("Ringback-Signature", "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + '.' + body)>; "
     "during a secret rotation a second v1= signed with the old secret"),
    ("Ringback-Event-Id", "the event's id (the same on every retry: drop duplicates by it)"),
    ("Ringback-Event-Type", "the event type, e.g. task.finished"),
    ("Ringback-Delivery-Id", "the delivery (one event to one target), as listed by "
     "/webhook_deliveries/"),
    ("Ringback-Target", "url_before, url_before_again, url_success, url_after, job or "
     "subscription"),
    ("User-Agent", "ringback-webhooks/<version>"),
)  # fmt: skip
_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Any 2xx within 10 s: delivered. Any other answer, a timeout or no "
          "connection is retried (5 s, 10 s, 20 s, … up to one hour apart, for 24 hours)."},
    410: {"description": "Gone: a subscription is switched off; for a task or job URL the "
          "delivery is dead at once."},
}  # fmt: skip


def event_type(model: type[_Event]) -> str:
    """The event type a model is the body of (its ``type`` literal)."""
    [value] = model.model_fields["type"].annotation.__args__  # type: ignore[union-attr]
    return str(value)


def _receiver(model: type[_Event]) -> Any:
    """A documented, never served operation: what a receiver of ``model`` gets."""

    async def receive(**_: Any) -> None:  # pragma: no cover - documentation only
        return None

    params = [
        inspect.Parameter(
            "body", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[model, Body()]
        )
    ] + [
        inspect.Parameter(
            name.lower().replace("-", "_"),
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[str, Header(alias=name, description=text)],
        )
        for name, text in _HEADERS
    ]
    receive.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return receive


def register_webhooks(app: FastAPI) -> None:
    """One entry per event type in the OpenAPI ``webhooks`` section."""
    for model in EVENT_MODELS:
        name = event_type(model)
        app.webhooks.add_api_route(
            name, _receiver(model), methods=["POST"], summary=name,
            description=f"{inspect.cleandoc(model.__doc__ or '')} Signed JSON POSTed to each "
            "target of the event (docs/webhooks.md).",
            responses=_ANSWERS, operation_id=f"webhook_{name.replace('.', '_')}",
        )  # fmt: skip
