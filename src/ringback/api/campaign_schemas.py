"""Campaign controls on tasks and queues (issue 18): the fields the task and queue schemas of
``api/schemas.py`` take from here (a task's ``expires_at`` and ``priority``; a queue's
``task_ttl_seconds``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
