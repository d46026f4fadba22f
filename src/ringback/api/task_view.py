"""A task as the API shows it, as JSON, without pydantic: the values of ``TaskOut`` (and its
legs' ``CallOut``) built from the stored rows, shaped by ``TaskOut``'s plan written out in
``api/task_plan.py`` (``python -m ringback.api.fast_dump`` writes it; a test checks it is the
model's). Webhooks that carry a task are delivered by every worker, which never imports the
API's models; the API builds its task responses from the same values (``api/schemas.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from operator import attrgetter
from typing import Any

from ringback.api.storage_links import fax_view
from ringback.domain.cdr import MS_FIELDS, TIME_FIELDS, shown_fields, view_names
from ringback.domain.json_plan import JsonPlan
from ringback.domain.model import TaskKind
from ringback.domain.rows import CallRow, QueueRow, TaskRow
from ringback.domain.task_rules import NewTask, format_seed_time

#: the CDR fields ``CallOut`` names otherwise (times in ``*_time_utc``, durations in seconds)
CALL_OUT_RENAMED = view_names("utc")
#: the CDR fields a task's ``calls`` do not show (the call history shows them)
CALL_OUT_HIDDEN = frozenset({"direction", "caller_id_name", "bridged_with", "detail", "worker"})
#: CDR field -> ``CallOut`` field name
CALL_OUT_FIELDS = shown_fields(CALL_OUT_RENAMED, CALL_OUT_HIDDEN)
_CALL_VALUES = attrgetter(*CALL_OUT_FIELDS)  # a leg's shown fields at once, in C
_CALL_NAMES = tuple(CALL_OUT_FIELDS.values())
_CALL_TIMES = tuple(name for f, name in CALL_OUT_FIELDS.items() if f in TIME_FIELDS)
_CALL_MS = tuple(name for f, name in CALL_OUT_FIELDS.items() if f in MS_FIELDS)


def call_fields(call: CallRow) -> dict[str, Any]:
    """A leg's :class:`CallOut` fields (by alias: ``from``): times as the API shows them,
    durations in seconds, nothing played as ``[]`` and no digits as ``""``."""
    values = dict(zip(_CALL_NAMES, _CALL_VALUES(call), strict=True))
    for name in _CALL_TIMES:
        values[name] = format_seed_time(values[name])
    for name in _CALL_MS:
        ms = values[name]
        values[name] = None if ms is None else round(ms / 1000)
    values["played"] = values["played"] or []
    values["dtmf_received"] = values["dtmf_received"] or ""
    values["fax"] = fax_view(call.client_id, call.fax)
    return values


@cache
def _task_plan() -> tuple[JsonPlan, frozenset[str], dict[str, Any]]:
    """``TaskOut``'s plan, the fields of a callback task shown as given (all but a job's and
    the legs) and ``CallbackParamsOut()``'s JSON. Read when first needed, so that the API's
    schemas, which import this module, load even when the written plan is out of date (the
    command that writes it imports them)."""
    from ringback.api.task_plan import TASK_PLAN

    callback_params = dict(TASK_PLAN.converts)["callback_params"]({})
    return TASK_PLAN, frozenset(TASK_PLAN.sources) - {"data", "options", "calls"}, callback_params


def own_fields(
    new: NewTask, fmt: Callable[[datetime | None], str | None] = format_seed_time
) -> dict[str, Any]:
    """What the client gave for a task: the callback fields, or a job's data and options."""
    payload = new.payload
    if new.kind is not TaskKind.CALLBACK:
        return {
            "data": payload,
            "options": {"attempts": new.max_tries, "backoff": new.backoff,
                        "timezone": given_zone(new), "webhooks": new.webhooks or []},
        }  # fmt: skip
    _, shown, no_params = _task_plan()
    fields = {key: value for key, value in payload.items() if key in shown}
    fields["callback_params"] = {**no_params, **payload.get("callback_params", {})}
    fields.setdefault("variables", {})
    fields.setdefault("attempts_src_ani_numbers", [])
    fields.setdefault("attempts_dst_ani_numbers", [])
    fields["try_count_caller"] = new.max_caller_tries
    fields["start_time_utc"] = fmt(new.start_time_utc)
    return fields


def task_fields(row: TaskRow, calls: list[CallRow]) -> dict[str, Any]:
    finished = row.stored_status == "finished"
    new = NewTask(
        kind=row.kind, name=row.name, payload=row.payload, run_at=row.run_at,
        max_tries=row.max_tries, backoff=row.backoff, max_caller_tries=row.max_caller_tries,
        caller_pause_s=row.caller_pause_s, timezone=row.timezone,
        start_time_utc=row.start_time_utc, webhooks=row.webhooks,
        timezone_source=row.timezone_source,
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
        "calls": [call_fields(call) for call in calls],
        **own_fields(new),
        **campaign_fields(row.expires_at, row.priority, row.timezone_source),
    }


def task_json(row: TaskRow, calls: list[CallRow]) -> dict[str, Any]:
    """The task as JSON exactly as the API shows it (webhook bodies carry it): what
    ``task_out(row, calls).model_dump(mode="json", by_alias=True)`` gives, built from the same
    fields without a pydantic round trip (they were validated when the task was added)."""
    return _task_plan()[0](task_fields(row, calls))


def given_zone(task: NewTask) -> str | None:
    """The zone a job named in its options (a derived zone is the task's, not an option)."""
    return task.timezone if task.timezone_source in (None, "given") else None


def campaign_fields(
    expires_at: datetime | None, priority: int, timezone_source: str | None
) -> dict[str, Any]:
    """A task's campaign controls as the API shows them."""
    return {
        "expires_at": format_seed_time(expires_at),
        "priority": priority,
        "timezone_source": timezone_source,
    }


def new_task_campaign_fields(task: NewTask, queue: QueueRow, now: datetime) -> dict[str, Any]:
    """:func:`campaign_fields` of a task just added (its queue's TTL applied)."""
    expires = task.expires_at
    if expires is None and queue.task_ttl_seconds:
        expires = now + timedelta(seconds=queue.task_ttl_seconds)
    return campaign_fields(expires, task.priority, task.timezone_source)
