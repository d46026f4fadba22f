"""A waiting task's priority (issue 18): ``PUT /client/{client_id}/tasks/{task_id}/priority``,
for any kind of task (callback tasks also take ``priority`` in their full replacement)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ringback.api.campaign_schemas import PriorityIn
from ringback.api.deps import CurrentClient, TasksDep
from ringback.api.schemas import MAX_ID, TaskOut, errors, task_out

router = APIRouter(prefix="/client/{client_id}/tasks", tags=["tasks"])


@router.put(
    "/{task_id}/priority", response_model=TaskOut, responses=errors(409),
    summary="Change a waiting task's priority (0-9, higher first; 409 once it runs)",
)  # fmt: skip
async def set_priority(
    task_id: Annotated[int, Path(ge=1, le=MAX_ID)], body: PriorityIn, client_id: CurrentClient,
    tasks: TasksDep,
) -> TaskOut:  # fmt: skip
    view = await tasks.set_priority(client_id, task_id, body.priority)
    return task_out(view.row, view.calls)
