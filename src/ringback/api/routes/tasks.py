"""Tasks of a queue: ``/client/{client_id}/task_scheduler/{scheduler_id}/tasks/`` (seed B4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from ringback.api.deps import ClockDep, CurrentClient, StoreDep
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
    task_out,
)
from ringback.domain.rows import Conflict, NotFound, TaskRow
from ringback.domain.tasks import task_from_callback, tasks_from_callbacks
from ringback.store import Store

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
class ListParams:
    status: str | None
    name: str | None
    created_from: datetime | None
    created_to: datetime | None
    finished_from: datetime | None
    finished_to: datetime | None
    limit: int
    offset: int

    def filters(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "name": self.name,
            "created_from": self.created_from,
            "created_to": self.created_to,
            "finished_from": self.finished_from,
            "finished_to": self.finished_to,
        }


def list_params(
    status: StoredStatus | None = None,
    name: Annotated[str | None, Query(max_length=255, pattern=r"^[^\x00]*$")] = None,
    created_from: Annotated[str | None, _time_query("created at or after")] = None,
    created_to: Annotated[str | None, _time_query("created before")] = None,
    finished_from: Annotated[str | None, _time_query("finished at or after")] = None,
    finished_to: Annotated[str | None, _time_query("finished before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> ListParams:
    return ListParams(
        status=status,
        name=name,
        created_from=parse_time_param("created_from", created_from),
        created_to=parse_time_param("created_to", created_to),
        finished_from=parse_time_param("finished_from", finished_from),
        finished_to=parse_time_param("finished_to", finished_to),
        limit=limit,
        offset=offset,
    )


ListDep = Annotated[ListParams, Depends(list_params)]


async def _task(
    store: Store, client_id: int, scheduler_id: int, task_id: int, now: datetime
) -> TaskRow:
    """The task, if it is in this (existing) queue of this client."""
    await store.get_queue(scheduler_id, client_id=client_id, pending=False)
    task = await store.get_task(task_id, now, client_id=client_id)
    if task.queue_id != scheduler_id:
        raise NotFound(f"no task {task_id} in queue {scheduler_id}")
    return task


@router.post(
    "/", status_code=201, response_model=TaskBatchOut, responses=errors(400, 409, 413),
    summary="Add tasks (1 to 10,000; all or nothing)",
)  # fmt: skip
async def add_tasks(
    scheduler_id: SchedulerId, body: TaskBatchIn, client_id: CurrentClient, store: StoreDep,
    clock: ClockDep, idem: IdempotencyDep,
) -> Response:  # fmt: skip
    if (replay := await idem.replay()) is not None:
        return replay
    queue = await store.get_queue(scheduler_id, client_id=client_id, pending=False)
    now = clock.now()
    new = tasks_from_callbacks(body.tasks, now)
    ids = await store.add_tasks(client_id, scheduler_id, new, now)
    return await idem.respond(201, {"tasks": created_tasks_json(ids, new, queue, now)})


@router.get("/", response_model=TaskListOut, responses=errors(), summary="List tasks")
async def list_tasks(
    scheduler_id: SchedulerId, client_id: CurrentClient, store: StoreDep, clock: ClockDep,
    params: ListDep,
) -> TaskListOut:  # fmt: skip
    await store.get_queue(scheduler_id, client_id=client_id, pending=False)
    where = {"client_id": client_id, "queue_id": scheduler_id, **params.filters()}
    rows, total = await store.page_tasks(
        clock.now(), **where, limit=params.limit, offset=params.offset
    )
    calls = await store.calls_for_tasks([row.id for row in rows])
    return TaskListOut(
        tasks=[task_out(row, calls[row.id]) for row in rows],
        total=total,
        limit=params.limit,
        offset=params.offset,
    )


@router.get("/{task_id}", response_model=TaskOut, responses=errors(), summary="Read a task")
async def get_task(
    scheduler_id: SchedulerId, task_id: TaskId, client_id: CurrentClient, store: StoreDep,
    clock: ClockDep,
) -> TaskOut:  # fmt: skip
    task = await _task(store, client_id, scheduler_id, task_id, clock.now())
    return task_out(task, (await store.calls_for_tasks([task.id]))[task.id])


@router.put(
    "/{task_id}", response_model=TaskOut, responses=errors(400, 409, 413),
    summary="Replace a waiting task (scheduled or delayed)",
)  # fmt: skip
async def put_task(
    scheduler_id: SchedulerId, task_id: TaskId, body: TaskPut, client_id: CurrentClient,
    store: StoreDep, clock: ClockDep,
) -> TaskOut:  # fmt: skip
    now = clock.now()
    await _task(store, client_id, scheduler_id, task_id, now)
    task = await store.update_task(task_id, client_id, task_from_callback(body, now), now)
    return task_out(task, (await store.calls_for_tasks([task.id]))[task.id])


@router.delete("/{task_id}", response_model=TaskOut, responses=errors(409), summary="Cancel a task")
async def cancel_task(
    scheduler_id: SchedulerId, task_id: TaskId, client_id: CurrentClient, store: StoreDep,
    clock: ClockDep,
) -> TaskOut:  # fmt: skip
    """The task is finished as failed / ``canceled``; 409 if it had already finished."""
    await _task(store, client_id, scheduler_id, task_id, clock.now())
    if not await store.cancel_task(task_id, clock.now(), client_id=client_id):
        raise Conflict(f"task {task_id} has already finished")
    task = await store.get_task(task_id, clock.now(), client_id=client_id)
    return task_out(task, (await store.calls_for_tasks([task.id]))[task.id])
