"""The console's "Download CSV" links: the tasks and calls lists' current filters, exported
whole (every page), streamed as the API's exports are (``ringback.service.exports``).
Included before the tasks and calls pages, whose ``/{id}`` would take ``export.csv``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from ringback.console.pages_calls import CallQuery, _moment
from ringback.console.pages_tasks import TaskQuery
from ringback.console.render import Console, ConsoleRoute
from ringback.domain.rows import InvalidInput, NotFound

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)


def _csv(parts: AsyncIterator[str], filename: str) -> StreamingResponse:
    async def encoded() -> AsyncIterator[bytes]:
        async for part in parts:
            yield part.encode("utf-8")

    return StreamingResponse(
        encoded(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                 "Cache-Control": "private, no-store"},
    )  # fmt: skip


@router.get("/tasks/export.csv")
async def export_tasks(request: Request, query: Annotated[TaskQuery, Query()]) -> Response:
    console = Console.of(request)
    session = await console.session(request)
    filters = query.filters(session.client_id)
    if query.queue_id is not None:
        queues = await console.services.queues.list(session.client_id)
        if all(q.id != query.queue_id for q in queues):
            raise NotFound(f"no queue {query.queue_id}")
    return _csv(console.services.exports.tasks_csv(**filters), "tasks.csv")


@router.get("/calls/export.csv")
async def export_calls(request: Request, query: Annotated[CallQuery, Query()]) -> Response:
    console = Console.of(request)
    session = await console.session(request)
    start, end = _moment(query.start), _moment(query.end)
    if start is not None and end is not None and end <= start:
        raise InvalidInput(
            "the time window ends before it starts", [{"loc": ["end"], "msg": "before start"}]
        )
    parts = console.services.exports.calls_csv(
        session.client_id, start=start, end=end, outcome=query.outcome or None
    )
    return _csv(parts, "calls.csv")
