"""The queues page: every queue of the client with its live counts (polled every 2 s as a
fragment of out-of-band cells), switched on or off and its limits changed from the page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from ringback.console.render import Console, ConsoleRoute, page
from ringback.console.session import check_csrf
from ringback.console.why import hours_of
from ringback.domain.rows import InvalidInput, QueueChanges

router = APIRouter(prefix="/ui/queues", route_class=ConsoleRoute, include_in_schema=False)
QueueId = Annotated[int, Path(ge=1)]
#: the largest concurrent-call limit and rate the page accepts (the API's bounds)
MAX_LIMIT = 100_000
MAX_CPS = 1000.0


@router.get("", response_class=HTMLResponse)
async def queues_page(request: Request) -> Response:
    console = Console.of(request)
    session = await console.session(request)
    stats = await console.services.queues.stats(session.client_id)
    hours = {s.queue.id: hours_of(s.queue) for s in stats}
    return page(request, "queues.html", {"stats": stats, "hours": hours}, session=session)


@router.get("/counts", response_class=HTMLResponse)
async def queue_counts(request: Request) -> Response:
    """The counters alone: cells swapped in by id (htmx ``hx-swap-oob``)."""
    console = Console.of(request)
    session = await console.session(request)
    stats = await console.services.queues.stats(session.client_id)
    return page(request, "_queue_counts.html", {"stats": stats}, session=session)


@router.post("/{queue_id}/status")
async def switch(
    request: Request, queue_id: QueueId, status: Annotated[str, Form(pattern="^(on|off)$")]
) -> Response:
    console = Console.of(request)
    session = await console.session(request)
    await check_csrf(request, session.csrf)
    await console.services.queues.change(session.client_id, queue_id, QueueChanges(status=status))
    return RedirectResponse("/ui/queues", status_code=303)


@router.post("/{queue_id}/limits")
async def limits(
    request: Request,
    queue_id: QueueId,
    concurrent_task_limit: Annotated[int, Form(ge=1, le=MAX_LIMIT)],
    max_calls_per_second: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """The queue's limit of calls at once, and its calls per second (empty: no rate limit)."""
    console = Console.of(request)
    session = await console.session(request)
    await check_csrf(request, session.csrf)
    rate: float | None = None
    if max_calls_per_second.strip():
        try:
            rate = float(max_calls_per_second)
        except ValueError:
            rate = -1.0
        if not 0 < rate <= MAX_CPS:
            raise InvalidInput(
                "calls per second: a number above 0 and at most 1000, or empty for no limit",
                [{"loc": ["max_calls_per_second"], "msg": f"not a rate: {max_calls_per_second!r}"}],
            )
    changes = QueueChanges(
        concurrent_task_limit=concurrent_task_limit,
        max_calls_per_second=rate,
        clear_max_calls_per_second=rate is None,
    )
    await console.services.queues.change(session.client_id, queue_id, changes)
    return RedirectResponse("/ui/queues", status_code=303)
