"""The tasks pages: a filtered, paged list (its rows polled every 2 s), a task's page (its
data, why it is not dialling, its calls' legs and its events, polled while it is not
finished), cancel and run now; adding tasks from a JSON or CSV file."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from ringback.console.render import Acting, Console, ConsoleRoute, page
from ringback.console.session import Session, check_csrf
from ringback.console.upload import Upload, placed, read_form, read_upload
from ringback.console.why import why_not_dialling
from ringback.domain.model import TaskKind, TaskStatus
from ringback.domain.rows import InvalidInput, NotFound, QueueRow
from ringback.service import TaskView

router = APIRouter(prefix="/ui/tasks", route_class=ConsoleRoute, include_in_schema=False)
TaskId = Annotated[int, Path(ge=1)]
PAGE_SIZE = 50
#: statuses a task is stored with (``delayed_concurrent_task`` is derived when read)
STATUSES = [s.value for s in TaskStatus if s is not TaskStatus.DELAYED_CONCURRENT_TASK]
KINDS = [k.value for k in TaskKind]
#: the largest file the page takes (the API's own body limit is larger)
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


#: a date, or a date and time to the minute or second (``YYYY-MM-DD[THH:MM[:SS]]``)
_WHEN = r"^(|\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?)$"


def _utc(name: str, value: str) -> datetime | None:
    """A window's bound, read in UTC; InvalidInput naming the field for a date that does not
    exist (2026-02-30)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidInput(
            f"{name}: {value!r} is not a date", [{"loc": [name], "msg": str(exc)}]
        ) from None


WINDOW_FIELDS = ("created_from", "created_to", "finished_from", "finished_to")


class TaskQuery(BaseModel):
    """The list's filters, from the query string."""

    status: str = Field(default="", pattern="^(|" + "|".join(STATUSES) + ")$")
    queue: str = Field(default="", max_length=18, pattern="^[0-9]*$")  # a form's "any" is ""
    kind: str = Field(default="", pattern="^(|" + "|".join(KINDS) + ")$")
    number: str = Field(default="", max_length=32, pattern=r"^\+?[0-9]*$")
    q: str = Field(default="", max_length=255)
    # a time window (UTC, as the browser's datetime-local field sends it): created or finished
    # in [from, to)
    created_from: str = Field(default="", pattern=_WHEN)
    created_to: str = Field(default="", pattern=_WHEN)
    finished_from: str = Field(default="", pattern=_WHEN)
    finished_to: str = Field(default="", pattern=_WHEN)
    page: int = Field(default=1, ge=1, le=1_000_000)

    @property
    def queue_id(self) -> int | None:
        return int(self.queue) if self.queue else None

    def filters(self, client_id: int) -> dict[str, Any]:
        return {
            "client_id": client_id,
            "queue_id": self.queue_id,
            "status": self.status or None,
            "kinds": [self.kind] if self.kind else None,
            "number": self.number.lstrip("+") or None,
            "name_contains": self.q.strip() or None,
            **{name: _utc(name, getattr(self, name)) for name in WINDOW_FIELDS},
        }

    def link(self, **changes: Any) -> str:
        values = {**self.model_dump(), **changes}
        return urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})


async def _listed(request: Request, query: TaskQuery) -> tuple[Session, dict[str, Any]]:
    console = Console.of(request)
    session = await console.session(request)
    services = console.services
    queues = await services.queues.list(session.client_id)
    if query.queue_id is not None and all(q.id != query.queue_id for q in queues):
        raise NotFound(f"no queue {query.queue_id}")
    offset = (query.page - 1) * PAGE_SIZE
    views, total = await services.tasks.page(
        limit=PAGE_SIZE, offset=offset, **query.filters(session.client_id)
    )
    pages = max(1, math.ceil(total / PAGE_SIZE))
    context = {
        "views": views, "total": total, "query": query, "pages": pages,
        "queues": {q.id: q for q in queues}, "statuses": STATUSES, "kinds": KINDS,
        "rows_url": f"/ui/tasks/rows?{query.link()}",
    }  # fmt: skip
    return session, context


@router.get("", response_class=HTMLResponse)
async def tasks_page(request: Request, query: Annotated[TaskQuery, Query()]) -> Response:
    session, context = await _listed(request, query)
    return page(request, "tasks.html", context, session=session)


@router.get("/rows", response_class=HTMLResponse)
async def task_rows(request: Request, query: Annotated[TaskQuery, Query()]) -> Response:
    session, context = await _listed(request, query)
    return page(request, "_task_rows.html", context, session=session)


# --- adding ---------------------------------------------------------------------------------


@router.get("/add", response_class=HTMLResponse)
async def add_page(request: Request) -> Response:
    console = Console.of(request)
    session = await console.session(request)
    queues = await console.services.queues.list(session.client_id)
    return page(request, "add.html", {"queues": queues}, session=session)


@router.post("/add", response_class=HTMLResponse)
async def add(
    request: Request,
    queue: Annotated[int, Form(ge=1)],
    file: Annotated[UploadFile, File()],
) -> Response:
    """Add the file's tasks to ``queue`` (jobs naming their own queue go there); all or none."""
    console = Console.of(request)
    session = await console.session(request)
    await check_csrf(request, session.csrf)
    target = await console.services.queues.get(session.client_id, queue, pending=False)
    content = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        raise InvalidInput(
            f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB: split it",
            [{"loc": ["file"], "msg": "too large"}],
        )
    upload = read_upload(file.filename or "", content, target.name)
    return await _add_upload(request, session, target, upload)


#: the "add a task" form's fields (a CSV row's columns, see console/upload.py)
FORM_FIELDS = (
    "type", "name", "a_number", "b_number", "try_count", "try_again_pause", "calling_number",
    "called_number", "audio_file", "ivr_file", "attempts", "delay", "timezone",
)  # fmt: skip


@router.post("/add-one", response_class=HTMLResponse)
async def add_one(request: Request, queue: Annotated[int, Form(ge=1)]) -> Response:
    """Add the one task the form describes to ``queue``."""
    console = Console.of(request)
    session = await console.session(request)
    await check_csrf(request, session.csrf)
    target = await console.services.queues.get(session.client_id, queue, pending=False)
    form = await request.form()
    fields = {name: value for name in FORM_FIELDS if isinstance(value := form.get(name), str)}
    return await _add_upload(request, session, target, read_form(fields, target.name))


async def _add_upload(
    request: Request, session: Session, target: QueueRow, upload: Upload
) -> Response:
    services = Console.of(request).services
    ids: list[int] = []
    if upload.jobs:
        try:
            ids += await services.tasks.add_jobs(session.client_id, upload.jobs)
        except InvalidInput as exc:
            raise placed(exc, upload.job_places) from exc
    if upload.callbacks:
        try:
            ids += await services.tasks.add_callback_tasks(
                session.client_id, target.id, upload.callbacks
            )
        except InvalidInput as exc:
            raise placed(exc, upload.callback_places) from exc
    template = "_added.html" if request.headers.get("HX-Request") else "added.html"
    context = {"ids": ids, "queue": target, "jobs": len(upload.jobs)}
    return page(request, template, context, session=session, status_code=201)


# --- one task -------------------------------------------------------------------------------


async def _task(request: Request, task_id: int) -> tuple[Session, dict[str, Any]]:
    console = Console.of(request)
    session = await console.session(request)
    services = console.services
    view: TaskView = await services.tasks.get(session.client_id, task_id)
    queue = await services.queues.get(session.client_id, view.row.queue_id, pending=False)
    events = await services.tasks.events(session.client_id, task_id)
    now = services.clock.now()
    context = {
        "task": view.row, "calls": view.calls, "events": events, "queue": queue,
        "why": why_not_dialling(view.row, queue, now),
        "data": json.dumps(view.row.payload, indent=2, ensure_ascii=False, sort_keys=True),
        "waiting": view.row.stored_status in ("scheduled", "delayed", "delayed_interval"),
        "finished": view.row.status == TaskStatus.FINISHED.value,
    }  # fmt: skip
    return session, context


@router.get("/{task_id}", response_class=HTMLResponse)
async def task_page(request: Request, task_id: TaskId) -> Response:
    session, context = await _task(request, task_id)
    return page(request, "task.html", context, session=session)


@router.get("/{task_id}/live", response_class=HTMLResponse)
async def task_live(request: Request, task_id: TaskId) -> Response:
    session, context = await _task(request, task_id)
    return page(request, "_task_live.html", context, session=session)


@router.post("/{task_id}/cancel")
async def cancel(task_id: TaskId, acting: Acting) -> Response:
    console, session = acting
    await console.services.tasks.cancel(session.client_id, task_id)
    return RedirectResponse(f"/ui/tasks/{task_id}", status_code=303)


@router.post("/{task_id}/run-now")
async def run_now(task_id: TaskId, acting: Acting) -> Response:
    console, session = acting
    await console.services.tasks.run_now(session.client_id, task_id)
    return RedirectResponse(f"/ui/tasks/{task_id}", status_code=303)
