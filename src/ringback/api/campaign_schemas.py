"""Campaign controls on tasks and queues (issue 18): the fields the task and queue schemas of
``api/schemas.py`` take from here (a task's ``expires_at`` and ``priority``; a queue's
``task_ttl_seconds``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ringback.domain.rows import QueueRow, TaskRow
from ringback.domain.task_rules import NewTask, format_seed_time

MAX_TTL_S = 366 * 86_400


class TaskCampaignOut(BaseModel):
    expires_at: str | None = Field(
        None, description="UTC, YYYY-MM-DD HH:MM:SS: not completed by then, the task finishes "
        "failed, comment 'expired' (from the task, or its queue's task_ttl_seconds)",
    )  # fmt: skip
    priority: int = Field(5, description="0-9: within a queue higher is dialled first")
    timezone_source: Literal["given", "number", "queue"] | None = Field(
        None, description="where timezone came from: given (the task named it), number "
        "(derived from the number called, the western-most of its zones), queue (the zone of "
        "the queue's calling hours, following them when they change); null: a task added "
        "before ringback derived zones",
        examples=["number"],
    )  # fmt: skip


class PriorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: int = Field(ge=0, le=9, description="0-9: within a queue higher is dialled first")


class QueueCampaignIn(BaseModel):
    task_ttl_seconds: int | None = Field(
        None, ge=1, le=MAX_TTL_S,
        description="a task added without expires_at expires this long after it was added "
        "(null: never; a change applies to tasks added afterwards)",
    )  # fmt: skip


class QueueCampaignOut(BaseModel):
    task_ttl_seconds: int | None = Field(
        default=None,
        description="seconds a task added to the queue has to complete before it finishes "
        "failed, expired (null: no limit)",
    )


def given_zone(task: NewTask) -> str | None:
    """The zone a job named in its options (a derived zone is the task's, not an option)."""
    return task.timezone if task.timezone_source in (None, "given") else None


def task_campaign_fields(row: TaskRow) -> dict[str, Any]:
    return {
        "expires_at": format_seed_time(row.expires_at),
        "priority": row.priority,
        "timezone_source": row.timezone_source,
    }


def new_task_campaign_fields(task: NewTask, queue: QueueRow, now: datetime) -> dict[str, Any]:
    """As :func:`task_campaign_fields` for a task just added (its queue's TTL applied)."""
    expires = task.expires_at
    if expires is None and queue.task_ttl_seconds:
        expires = now + timedelta(seconds=queue.task_ttl_seconds)
    return {
        "expires_at": format_seed_time(expires),
        "priority": task.priority,
        "timezone_source": task.timezone_source,
    }
