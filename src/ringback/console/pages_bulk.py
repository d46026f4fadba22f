"""Cancelling several tasks at once from the task list: the tasks ticked on the page, or every
unfinished task matching the list's filters (after a confirmation naming how many).

Ticked tasks are cancelled through ``TaskService.cancel`` (audited one by one, as from the
task's page); a task that has already finished is reported as not cancellable, not as an error.
Matching tasks are cancelled set-based (``TaskService.cancel_matching``): 10,000 per transaction
(each with one audit entry naming the filters and the count), so workers are never held long on
their locks, and up to 100,000 per submission; the page offers to go on for the rest. Only the
signed-in client's tasks: a ticked id that is not one of them is a 404 and cancels nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from ringback.console.pages_tasks import STATUSES, TaskQuery
from ringback.console.render import Acting, ConsoleRoute, page
from ringback.domain.model import TaskStatus
from ringback.domain.rows import Conflict, InvalidInput
from ringback.service import TaskService

router = APIRouter(prefix="/ui/tasks", route_class=ConsoleRoute, include_in_schema=False)
#: at most this many ticked tasks are cancelled by one submission
BULK_LIMIT = 500
#: matching tasks: this many per transaction, at most MATCHING_LIMIT per submission (the page
#: offers to go on)
MATCHING_CHUNK = 10_000
MATCHING_LIMIT = 100_000
FINISHED = TaskStatus.FINISHED.value
UNFINISHED = [status for status in STATUSES if status != FINISHED]


@dataclass
class Outcome:
    """What a bulk cancel did: the ids cancelled, those that had already finished."""

    cancelled: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)


async def cancel_each(tasks: TaskService, client_id: int, ids: list[int]) -> Outcome:
    outcome = Outcome()
    for task_id in ids:
        try:
            await tasks.cancel(client_id, task_id)
        except Conflict:  # it finished meanwhile
            outcome.finished.append(task_id)
        else:
            outcome.cancelled.append(task_id)
    return outcome


def _query(form: dict[str, str]) -> TaskQuery:
    """The list's filters, sent back by the bulk form as hidden fields."""
    try:
        return TaskQuery.model_validate(
            {k: v for k, v in form.items() if k in TaskQuery.model_fields}
        )
    except ValidationError as exc:
        details = [{"loc": [str(e["loc"][0])], "msg": e["msg"]} for e in exc.errors()]
        raise InvalidInput("invalid filters", details) from None


def _ids(values: list[str]) -> list[int]:
    try:
        ids = list(dict.fromkeys(int(value) for value in values))
    except ValueError:
        raise InvalidInput("invalid input: ids", [{"loc": ["ids"], "msg": "task ids"}]) from None
    if not ids:
        msg = "tick the tasks to cancel first (or cancel all that match the filters)"
        raise InvalidInput("nothing selected", [{"loc": ["ids"], "msg": msg}])
    if len(ids) > BULK_LIMIT or any(not 1 <= i < 2**63 for i in ids):
        msg = f"at most {BULK_LIMIT} task ids"
        raise InvalidInput("invalid input: ids", [{"loc": ["ids"], "msg": msg}])
    return ids


async def _unfinished(tasks: TaskService, query: TaskQuery, client_id: int) -> tuple[int, int]:
    """How many tasks match the filters, and how many of those have not finished."""
    filters = query.filters(client_id)
    _, total = await tasks.page(limit=1, **filters)
    if query.status:
        return total, 0 if query.status == FINISHED else total
    waiting = 0
    for status in UNFINISHED:
        _, count = await tasks.page(limit=1, **{**filters, "status": status})
        waiting += count
    return total, waiting


async def cancel_matching(tasks: TaskService, query: TaskQuery, client_id: int) -> Outcome:
    """Up to MATCHING_LIMIT unfinished tasks matching the filters, MATCHING_CHUNK at a time."""
    outcome = Outcome()
    if query.status == FINISHED:
        return outcome
    while len(outcome.cancelled) < MATCHING_LIMIT:
        chunk = min(MATCHING_CHUNK, MATCHING_LIMIT - len(outcome.cancelled))
        ids = await tasks.cancel_matching(limit=chunk, **query.filters(client_id))
        outcome.cancelled += ids
        if len(ids) < chunk:
            break
    return outcome


@router.post("/cancel", response_class=HTMLResponse)
async def cancel_many(request: Request, acting: Acting) -> Response:
    """``scope=selected``: the ticked ``ids``; ``scope=matching``: first a confirmation with the
    count, then (``confirm=1``) up to BULK_LIMIT of the matching unfinished tasks."""
    console, session = acting
    tasks, client_id = console.services.tasks, session.client_id
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    query = _query(fields)
    context: dict[str, Any] = {
        "query": query,
        "limit": MATCHING_LIMIT,
        "back": f"/ui/tasks?{query.link()}",
    }
    if fields.get("scope") == "matching":  # a queue not the client's: NotFound from the page
        total, waiting = await _unfinished(tasks, query, client_id)
        context |= {"total": total, "waiting": waiting}
        if fields.get("confirm") != "1":
            return page(request, "cancel_many.html", {**context, "asking": True}, session=session)
        outcome = await cancel_matching(tasks, query, client_id)
        _, remaining = await _unfinished(tasks, query, client_id)
        context |= {
            "outcome": outcome,
            "finished_matching": total - waiting,
            "remaining": remaining,
        }
        return page(request, "cancel_many.html", context, session=session)
    ids = _ids([v for v in form.getlist("ids") if isinstance(v, str)])
    views = [await tasks.get(client_id, task_id) for task_id in ids]  # not the client's: 404
    outcome = Outcome(finished=[v.row.id for v in views if v.row.status == FINISHED])
    done = await cancel_each(
        tasks, client_id, [v.row.id for v in views if v.row.status != FINISHED]
    )
    outcome.cancelled, outcome.finished = done.cancelled, outcome.finished + done.finished
    context |= {"outcome": outcome, "selected": len(ids)}
    return page(request, "cancel_many.html", context, session=session)
