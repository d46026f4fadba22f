"""CSV exports, streamed: ``GET …/task_scheduler/{scheduler_id}/tasks/export.csv`` (a queue's
tasks, the task list's filters) and ``GET …/call_history/export.csv`` (the call history's
window). The answer is ``text/csv`` sent a chunk at a time (chunked transfer): any size, and
the server holds one chunk of rows. Columns: ``ringback.domain.export`` (docs/campaigns.md,
"Exports").

Registered before the task and call-history routers, whose ``/{task_id}`` and
``/{call_uuid}`` would otherwise take ``export.csv`` for an id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from ringback.api.deps import CurrentClient, ServicesDep
from ringback.api.routes.call_history import EndQuery, StartQuery, _time_param
from ringback.api.routes.tasks import FilterDep, SchedulerId
from ringback.api.schemas import errors
from ringback.domain.export import CALL_COLUMNS, TASK_COLUMNS
from ringback.domain.model import Outcome

router = APIRouter(prefix="/client/{client_id}", tags=["exports"])
MEDIA_TYPE = "text/csv; charset=utf-8"
_OUTCOMES = "^(" + "|".join(o.value for o in Outcome) + ")$"


def _csv_response(description: str, columns: tuple[tuple[str, str], ...]) -> dict[int | str, Any]:
    listed = "; ".join(f"`{name}`: {what}" for name, what in columns)
    return {
        **errors(),
        200: {
            "description": f"{description} Columns, in order: {listed}.",
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": ",".join(name for name, _ in columns) + "\r\n",
                }
            },
        },
    }


def _streamed(parts: AsyncIterator[str], filename: str) -> StreamingResponse:
    async def encoded() -> AsyncIterator[bytes]:
        async for part in parts:
            yield part.encode("utf-8")

    return StreamingResponse(
        encoded(),
        media_type=MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/task_scheduler/{scheduler_id}/tasks/export.csv",
    response_class=StreamingResponse,
    responses=_csv_response(
        "The queue's tasks matching the filters, by id, as CSV (streamed; times UTC ISO 8601; "
        "cells that start like a formula are prefixed with an apostrophe).",
        TASK_COLUMNS,
    ),
    summary="Export tasks as CSV (the list's filters, any number of tasks)",
)
async def export_tasks(
    scheduler_id: SchedulerId, client_id: CurrentClient, services: ServicesDep, where: FilterDep
) -> StreamingResponse:
    filters: dict[str, Any] = {"client_id": client_id, "queue_id": scheduler_id, **where.filters()}
    await services.exports.check_tasks(**filters)  # an unknown queue: 404, not an empty file
    return _streamed(services.exports.tasks_csv(**filters), f"tasks-{scheduler_id}.csv")


@router.get(
    "/call_history/export.csv",
    response_class=StreamingResponse,
    responses=_csv_response(
        "The client's calls that started in [start, end), oldest first, one row per call, as "
        "CSV (streamed; times UTC ISO 8601; formula-like cells prefixed with an apostrophe).",
        CALL_COLUMNS,
    ),
    summary="Export calls as CSV (the call history's window, any number of calls)",
)
async def export_calls(
    client_id: CurrentClient,
    services: ServicesDep,
    start: StartQuery = None,
    end: EndQuery = None,
    outcome: Annotated[
        str | None,
        Query(
            pattern=_OUTCOMES,
            examples=["answered"],
            description="Only calls with a leg that ended with this outcome",
        ),
    ] = None,
) -> StreamingResponse:
    parts = services.exports.calls_csv(
        client_id,
        start=_time_param("start", start),
        end=_time_param("end", end),
        outcome=outcome,
    )
    return _streamed(parts, "calls.csv")
