"""Tasks of a queue: ``/client/{client_id}/task_scheduler/{scheduler_id}/tasks/`` (seed B4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Response

from ringback.api.deps import CurrentClient, TasksDep
from ringback.api.idempotency import IdempotencyDep
from ringback.api.schemas import (
    MAX_ID,
    StoredStatus,
    TaskBatchIn,
    TaskBatchOut,
    TaskListOut,
    TaskOut,
    TaskPut,
    created_tasks_json,
    errors,
    parse_time_param,
    task_json,
    task_out,
)

router = APIRouter(prefix="/client/{client_id}/task_scheduler/{scheduler_id}/tasks", tags=["tasks"])
SchedulerId = Annotated[int, Path(ge=1, le=MAX_ID, description="The queue id")]
TaskId = Annotated[int, Path(ge=1, le=MAX_ID)]
_TIME = "UTC 'YYYY-MM-DD HH:MM:SS' or ISO 8601 with a zone"
_TIME_RE = (
    r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    r"( ([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?"
    r"|T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?(Z|[+-]0[0-9]:[0-5][0-9]))$"
)


def _time_query(what: str) -> Any:
    return Query(description=f"{what}; {_TIME}", json_schema_extra={"pattern": _TIME_RE})


@dataclass(slots=True)
class FilterParams:
    """The task list's filters (the list and the CSV export take the same)."""

    status: str | None
    name: str | None
    created_from: datetime | None
    created_to: datetime | None
    finished_from: datetime | None
    finished_to: datetime | None

    def filters(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "name": self.name,
            "created_from": self.created_from,
            "created_to": self.created_to,
            "finished_from": self.finished_from,
            "finished_to": self.finished_to,
        }


@dataclass(slots=True)
class ListParams:
    where: FilterParams
    limit: int
    offset: int

    def filters(self) -> dict[str, Any]:
        return self.where.filters()


def filter_params(
    status: Annotated[StoredStatus | None, Query(description="Tasks with this status")] = None,
    name: Annotated[
        str | None, Query(max_length=255, pattern=r"^[^\x00]*$", description="Tasks of this name")
    ] = None,
    created_from: Annotated[str | None, _time_query("created at or after")] = None,
    created_to: Annotated[str | None, _time_query("created before")] = None,
    finished_from: Annotated[str | None, _time_query("finished at or after")] = None,
    finished_to: Annotated[str | None, _time_query("finished before")] = None,
) -> FilterParams:
    return FilterParams(
        status=status,
        name=name,
        created_from=parse_time_param("created_from", created_from),
        created_to=parse_time_param("created_to", created_to),
        finished_from=parse_time_param("finished_from", finished_from),
        finished_to=parse_time_param("finished_to", finished_to),
    )


FilterDep = Annotated[FilterParams, Depends(filter_params)]


def list_params(
    where: FilterDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> ListParams:
    return ListParams(where=where, limit=limit, offset=offset)


ListDep = Annotated[ListParams, Depends(list_params)]


@router.post(
    "/", status_code=201, response_model=TaskBatchOut, responses=errors(400, 409, 413),
    summary="Add tasks (1 to 10,000; all or nothing)",
)  # fmt: skip
async def add_tasks(
    scheduler_id: SchedulerId, body: TaskBatchIn, client_id: CurrentClient, tasks: TasksDep,
    idem: IdempotencyDep,
) -> Response:  # fmt: skip
    if (replay := await idem.replay()) is not None:
        return replay
    added = await tasks.add_tasks(client_id, scheduler_id, body.tasks)
    content = {"tasks": created_tasks_json(added.ids, added.tasks, added.queue, added.at)}
    return await idem.respond(201, content)


@router.get("/", response_model=TaskListOut, responses=errors(), summary="List tasks")
async def list_tasks(
    scheduler_id: SchedulerId, client_id: CurrentClient, tasks: TasksDep, params: ListDep
) -> Response:
    views, total = await tasks.page(
        client_id=client_id, queue_id=scheduler_id, **params.filters(), limit=params.limit,
        offset=params.offset,
    )  # fmt: skip
    # TaskListOut's JSON, each task as task_out shows it (task_json: the same fields without
    # validating a model per task, then again as the response model: ~15 ms a page of 100)
    page = {
        "tasks": [task_json(view.row, view.calls) for view in views],
        "total": total, "limit": params.limit, "offset": params.offset,
    }  # fmt: skip
    return Response(orjson.dumps(page), media_type="application/json")


@router.get("/{task_id}", response_model=TaskOut, responses=errors(), summary="Read a task")
async def get_task(
    scheduler_id: SchedulerId, task_id: TaskId, client_id: CurrentClient, tasks: TasksDep
) -> TaskOut:
    view = await tasks.get(client_id, task_id, queue_id=scheduler_id)
    return task_out(view.row, view.calls)


@router.put(
    "/{task_id}", response_model=TaskOut, responses=errors(400, 409, 413),
    summary="Replace a waiting task (scheduled or delayed)",
)  # fmt: skip
async def put_task(
    scheduler_id: SchedulerId, task_id: TaskId, body: TaskPut, client_id: CurrentClient,
    tasks: TasksDep,
) -> TaskOut:  # fmt: skip
    view = await tasks.replace(client_id, scheduler_id, task_id, body)
    return task_out(view.row, view.calls)


@router.delete("/{task_id}", response_model=TaskOut, responses=errors(409), summary="Cancel a task")
async def cancel_task(
    scheduler_id: SchedulerId, task_id: TaskId, client_id: CurrentClient, tasks: TasksDep
) -> TaskOut:
    """The task is finished as failed / ``canceled``; 409 if it had already finished."""
    view = await tasks.cancel(client_id, task_id, queue_id=scheduler_id)
    return task_out(view.row, view.calls)
