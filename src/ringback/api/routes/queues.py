"""Scheduler queues: ``/client/{client_id}/task_scheduler/`` (seed B3)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ringback.api.deps import CurrentClient, QueuesDep
from ringback.api.idempotency import IdempotencyDep
from ringback.api.schemas import (
    MAX_ID,
    QueueCreate,
    QueueListOut,
    QueueOut,
    QueueUpdate,
    errors,
    hours_dict,
)
from ringback.domain.rows import QueueChanges

router = APIRouter(prefix="/client/{client_id}/task_scheduler", tags=["queues"])
SchedulerId = Annotated[int, Path(ge=1, le=MAX_ID, description="The queue id")]


@router.post(
    "/", status_code=201, response_model=QueueOut, responses=errors(400, 409, 413),
    summary="Create a queue",
)  # fmt: skip
async def create_queue(
    body: QueueCreate, client_id: CurrentClient, queues: QueuesDep, idem: IdempotencyDep,
) -> Response:  # fmt: skip
    if (replay := await idem.replay()) is not None:
        return replay
    queue = await queues.create(
        client_id,
        body.name,
        comment=body.comment,
        status=body.status,
        concurrent_task_limit=body.concurrent_task_limit,
        max_calls_per_second=body.max_calls_per_second,
        calling_hours=hours_dict(body.calling_hours),
        redial_interrupted=body.redial_interrupted,
        task_ttl_seconds=body.task_ttl_seconds,
    )
    return await idem.respond(201, QueueOut.of(queue).model_dump(mode="json"))


@router.get("/", response_model=QueueListOut, responses=errors(), summary="List queues")
async def list_queues(client_id: CurrentClient, queues: QueuesDep) -> QueueListOut:
    return QueueListOut(queues=[QueueOut.of(q) for q in await queues.list(client_id)])


@router.get("/{scheduler_id}", response_model=QueueOut, responses=errors(), summary="Read a queue")
async def get_queue(
    scheduler_id: SchedulerId, client_id: CurrentClient, queues: QueuesDep
) -> QueueOut:
    return QueueOut.of(await queues.get(client_id, scheduler_id))


@router.put(
    "/{scheduler_id}", response_model=QueueOut, responses=errors(400, 409, 413),
    summary="Change a queue (only the fields sent)",
)  # fmt: skip
async def update_queue(
    scheduler_id: SchedulerId, body: QueueUpdate, client_id: CurrentClient, queues: QueuesDep
) -> QueueOut:
    sent = body.model_fields_set
    hours = hours_dict(body.calling_hours)
    changes = QueueChanges(
        name=body.name,
        comment=body.comment,
        status=body.status,
        concurrent_task_limit=body.concurrent_task_limit,
        max_calls_per_second=body.max_calls_per_second,
        clear_max_calls_per_second="max_calls_per_second" in sent
        and body.max_calls_per_second is None,
        calling_hours=hours,
        clear_calling_hours="calling_hours" in sent and hours is None,
        redial_interrupted=body.redial_interrupted,
        task_ttl_seconds=body.task_ttl_seconds,
        clear_task_ttl_seconds="task_ttl_seconds" in sent and body.task_ttl_seconds is None,
    )
    return QueueOut.of(await queues.change(client_id, scheduler_id, changes))


@router.delete(
    "/{scheduler_id}", status_code=204, response_class=Response, responses=errors(409),
    summary="Delete a queue",
)  # fmt: skip
async def delete_queue(
    scheduler_id: SchedulerId,
    client_id: CurrentClient,
    queues: QueuesDep,
    force: Annotated[bool, Query(description="cancel its unfinished tasks first")] = False,
) -> Response:
    """Refused (409) while the queue has unfinished tasks, unless ``force=true``."""
    await queues.delete(client_id, scheduler_id, force=force)
    return Response(status_code=204)
