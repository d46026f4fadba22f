"""Jobs: ``/client/{client_id}/jobs/``, the AddJob JSON of seed 000 (msg_call / ivr_call)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from ringback.api.deps import ClockDep, CurrentClient, ServiceDep, StoreDep
from ringback.api.idempotency import IdempotencyDep
from ringback.api.routes.tasks import ListDep
from ringback.api.schemas import MAX_ID, JobListOut, JobOut, errors, job_out, reject_unstorable
from ringback.domain.model import TaskKind
from ringback.domain.rows import NotFound
from ringback.domain.tasks import Job
from ringback.service import InvalidInput

router = APIRouter(prefix="/client/{client_id}/jobs", tags=["jobs"])
JobId = Annotated[int, Path(ge=1, le=MAX_ID)]
JOB_KINDS = [TaskKind.MSG_CALL.value, TaskKind.IVR_CALL.value]


@router.post(
    "/", status_code=201, response_model=JobOut, responses=errors(400, 409, 413),
    summary="Add a job (AddJob JSON: type, data, options; optional queue)",
)  # fmt: skip
async def add_job(
    body: Job, client_id: CurrentClient, store: StoreDep, clock: ClockDep,
    service: ServiceDep, idem: IdempotencyDep,
) -> Response:  # fmt: skip
    """Goes to the named ``queue``, or to the client's ``default`` queue (made, switched on,
    on first use)."""
    if (replay := await idem.replay()) is not None:
        return replay
    reject_unstorable(body.model_dump())
    try:
        [job_id] = await service.add_jobs(client_id, [body])
    except InvalidInput as exc:  # the service numbers items; this body is one job
        details = [{**d, "loc": ["body", *d["loc"][1:]]} for d in exc.details]
        raise InvalidInput(exc.message.replace("; nothing was added", ""), details) from None
    row = await store.get_task(job_id, clock.now(), client_id=client_id)
    return await idem.respond(
        201, job_out(row, [], clock.now()).model_dump(mode="json", by_alias=True)
    )


@router.get("/", response_model=JobListOut, responses=errors(), summary="List jobs")
async def list_jobs(
    client_id: CurrentClient, store: StoreDep, clock: ClockDep, params: ListDep
) -> JobListOut:
    now = clock.now()
    where = {"client_id": client_id, "kinds": JOB_KINDS, **params.filters()}
    rows, total = await store.page_tasks(now, **where, limit=params.limit, offset=params.offset)
    calls = await store.calls_for_tasks([row.id for row in rows])
    return JobListOut(
        jobs=[job_out(row, calls[row.id], now) for row in rows],
        total=total,
        limit=params.limit,
        offset=params.offset,
    )


@router.get("/{job_id}", response_model=JobOut, responses=errors(), summary="Read a job")
async def get_job(
    job_id: JobId, client_id: CurrentClient, store: StoreDep, clock: ClockDep
) -> JobOut:
    row = await store.get_task(job_id, clock.now(), client_id=client_id)
    if row.kind.value not in JOB_KINDS:
        raise NotFound(f"no job {job_id}")
    return job_out(row, (await store.calls_for_tasks([row.id]))[row.id], clock.now())
