"""Tasks, the application layer's core: add (AddJob jobs into named queues, callback tasks into
one queue; all or nothing), read, list, replace and cancel, and the task resource (a task with
the legs of its calls, :class:`TaskView`) that the API, the CLI and webhook bodies show."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Unpack

from ringback.client_files import Storage
from ringback.clock import Clock
from ringback.domain.callee_zone import called_number, callee_zone
from ringback.domain.model import DEFAULT_QUEUE as DEFAULT_QUEUE
from ringback.domain.rows import (
    CallRow,
    Conflict,
    EventRow,
    InvalidInput,
    NotFound,
    QueueRow,
    TaskRow,
)
from ringback.domain.task_rules import NewTask, check_expires_at
from ringback.service.audit import AuditLog, actor_for, entry
from ringback.service.campaign_rules import (
    callback_caller_ids,
    check_caller_ids,
    job_caller_ids,
    raise_caller_id_problems,
)
from ringback.store import Store, TaskFilters
from ringback.store.tasks import SEARCH_WINDOW as SEARCH_WINDOW  # the task list says it

if TYPE_CHECKING:  # the intake's models (pydantic) are imported by the first add, not by a
    # worker, which reads stored tasks without them (ringback.domain.payloads)
    from ringback.domain.tasks import CallbackTask


@dataclass(frozen=True, slots=True)
class TaskView:
    """The task resource: a task and the legs of its calls."""

    row: TaskRow
    calls: list[CallRow]


@dataclass(frozen=True, slots=True)
class AddedTasks:
    """Tasks just added: their queue, ids and stored fields, and when."""

    queue: QueueRow
    ids: list[int]
    tasks: list[NewTask]
    at: datetime


class TaskService:
    """Tasks: add (jobs, callback tasks), read, list, replace, cancel; the task resource."""

    def __init__(self, store: Store, clock: Clock, storage: Storage | None = None) -> None:
        """``storage``: check the storage files jobs name when they are added (None: not
        checked here; the task fails at run time if its file is missing)."""
        self.store = store
        self.clock = clock
        self.storage = storage
        self.audit = AuditLog(store, clock)

    async def add_jobs(self, client_id: int, items: Sequence[Any]) -> list[int]:
        """AddJob JSON objects; each goes to its ``queue`` or to ``default`` (made on first use)."""
        from ringback.domain.tasks import task_from_job
        from ringback.service.job_inputs import check_fax_documents, check_job_files, parse_jobs

        jobs = parse_jobs(items)
        _check_expiry(
            [(i, "options", j.options.expires_at) for i, j in enumerate(jobs)], self.clock
        )
        now = self.clock.now()
        by_queue: dict[str, list[tuple[int, NewTask]]] = defaultdict(list)
        for index, job in enumerate(jobs):
            by_queue[job.queue or DEFAULT_QUEUE].append((index, task_from_job(job, now)))
        # the caller-id list and the named queues in one read (an AddJob's caller waits)
        view = await self.store.intake_view(client_id, [n for n in by_queue if n != DEFAULT_QUEUE])
        raise_caller_id_problems(
            view.caller_ids, [f for i, j in enumerate(jobs) for f in job_caller_ids(i, j)]
        )
        if self.storage is not None:
            check_job_files(self.storage, client_id, jobs)
            await check_fax_documents(self.storage, client_id, jobs)
        queues: dict[str, QueueRow] = {}
        for name, entries in by_queue.items():  # resolve every queue before writing anything
            if name == DEFAULT_QUEUE:
                queues[name] = await self.store.ensure_queue(
                    client_id, name, now, counted=False, status="on"
                )
            elif name in view.queues:  # the row alone: the add reads its id and calling hours
                queues[name] = view.queues[name]
            else:
                raise InvalidInput(
                    f"no queue named {name!r}; nothing was added",
                    [{"loc": [i, "queue"], "msg": f"no queue named {name!r}"} for i, _ in entries],
                )
        ids: dict[int, int] = {}
        for name, entries in by_queue.items():
            new = with_callee_zones([task for _, task in entries], queues[name], now)
            # the batch's audit entry is written with it (one statement on PostgreSQL)
            added = await self.store.add_tasks(
                client_id, queues[name].id, new, now, actor=actor_for(client_id)
            )
            ids.update({index: task_id for (index, _), task_id in zip(entries, added, strict=True)})
        return [ids[index] for index in range(len(jobs))]

    async def add_callback_tasks(
        self, client_id: int, queue_id: int, items: Sequence[Any]
    ) -> list[int]:
        """Callback tasks (JSON objects or validated :class:`CallbackTask`) into the client's
        queue ``queue_id``; their ids."""
        return (await self.add_tasks(client_id, queue_id, items)).ids

    async def add_tasks(self, client_id: int, queue_id: int, items: Sequence[Any]) -> AddedTasks:
        """:meth:`add_callback_tasks`, with the queue and the tasks as stored (to show them
        without reading them back). NotFound: not a queue of the client."""
        from ringback.domain.tasks import tasks_from_callbacks
        from ringback.service.job_inputs import parse_callback_tasks

        specs = parse_callback_tasks(items)  # validated models pass as they are
        _check_expiry([(i, None, spec.expires_at) for i, spec in enumerate(specs)], self.clock)
        queue = await self.store.get_queue(queue_id, client_id=client_id, pending=False)
        await check_caller_ids(
            self.store,
            client_id,
            [f for i, s in enumerate(specs) for f in callback_caller_ids(i, s)],
        )
        now = self.clock.now()
        new = with_callee_zones(tasks_from_callbacks(specs, now), queue, now)
        ids = await self.store.add_tasks(client_id, queue_id, new, now, actor=actor_for(client_id))
        return AddedTasks(queue, ids, new, now)

    # --- the task resource: a task with the legs of its calls ---------------------------------

    async def get(
        self,
        client_id: int,
        task_id: int,
        *,
        queue_id: int | None = None,
        kinds: Sequence[str] | None = None,
    ) -> TaskView:
        """The client's task; NotFound when ``queue_id`` (an existing queue of the client) is
        not its queue, or its kind is not one of ``kinds``."""
        if queue_id is not None:
            await self.store.get_queue(queue_id, client_id=client_id, pending=False)
        task = await self.store.get_task(task_id, self.clock.now(), client_id=client_id)
        if queue_id is not None and task.queue_id != queue_id:
            raise NotFound(f"no task {task_id} in queue {queue_id}")
        if kinds is not None and task.kind.value not in kinds:
            raise NotFound(f"no {'job' if 'ivr_call' in kinds else 'task'} {task_id}")
        return (await self.views([task]))[0]

    async def page(
        self, *, limit: int = 100, offset: int = 0, **filters: Unpack[TaskFilters]
    ) -> tuple[list[TaskView], int]:
        """One page of tasks matching ``filters`` (a ``queue_id`` must be one of the client's:
        NotFound otherwise) and how many match in all."""
        client_id, queue_id = filters.get("client_id"), filters.get("queue_id")
        if queue_id is not None:
            await self.store.get_queue(queue_id, client_id=client_id, pending=False)
        rows, total = await self.store.page_tasks(
            self.clock.now(), limit=limit, offset=offset, **filters
        )
        return await self.views(rows), total

    async def rows(
        self, *, limit: int = 100, offset: int = 0, **filters: Unpack[TaskFilters]
    ) -> list[TaskRow]:
        """Tasks matching ``filters`` (rows only, without their calls)."""
        return await self.store.list_tasks(self.clock.now(), limit=limit, offset=offset, **filters)

    async def views(self, rows: Sequence[TaskRow]) -> list[TaskView]:
        """Each task with its calls' legs (one read for all of them)."""
        calls = await self.store.calls_for_tasks([row.id for row in rows])
        return [TaskView(row, calls[row.id]) for row in rows]

    async def replace(
        self, client_id: int, queue_id: int, task_id: int, spec: CallbackTask
    ) -> TaskView:
        """Replace a waiting task's fields; Conflict once it runs or finished."""
        from ringback.domain.tasks import task_from_callback

        await self.get(client_id, task_id, queue_id=queue_id)
        _check_expiry([(None, None, spec.expires_at)], self.clock)
        queue = await self.store.get_queue(queue_id, client_id=client_id, pending=False)
        await check_caller_ids(self.store, client_id, callback_caller_ids(None, spec))
        now = self.clock.now()
        [new] = with_callee_zones([task_from_callback(spec, now)], queue, now)
        with self.audit.change(client_id, entry("changed", "task", task_id, replaced=True,
                                                priority=new.priority, name=new.name)):  # fmt: skip
            task = await self.store.update_task(task_id, client_id, new, now)
        return (await self.views([task]))[0]

    async def cancel(
        self, client_id: int, task_id: int, *, queue_id: int | None = None
    ) -> TaskView:
        """Finish the task as failed / ``canceled``; Conflict if it had already finished."""
        await self.get(client_id, task_id, queue_id=queue_id)
        with self.audit.change(client_id, entry("cancelled", "task", task_id)):
            cancelled = await self.store.cancel_task(task_id, self.clock.now(), client_id=client_id)
        if not cancelled:
            raise Conflict(f"task {task_id} has already finished")
        return await self.get(client_id, task_id)

    async def cancel_matching(self, *, limit: int, **filters: Unpack[TaskFilters]) -> list[int]:
        """Cancel up to ``limit`` unfinished tasks matching ``filters`` (those :meth:`page`
        lists; ``client_id`` required), oldest first, set-based in one transaction; returns
        their ids. One audit entry names the filters and the count."""
        client_id = filters.get("client_id")
        if client_id is None:
            raise ValueError("cancel_matching needs the client_id filter")
        shown = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in filters.items()}
        given = {k: v for k, v in shown.items() if v is not None and k != "client_id"}
        with self.audit.change(client_id, entry("cancelled", "task", None, matching=given)):
            return await self.store.cancel_matching(self.clock.now(), limit=limit, **filters)

    async def run_now(self, client_id: int, task_id: int) -> TaskView:
        """Make a waiting task due now (its next try without waiting for it); Conflict once it
        runs or finished. A switched-off queue, its limit and calling hours still apply."""
        with self.audit.change(client_id, entry("changed", "task", task_id, run_now=True)):
            ran = await self.store.run_task_now(task_id, self.clock.now(), client_id=client_id)
        if not ran:
            raise Conflict(f"task {task_id} is not waiting: only a waiting task can run now")
        return await self.get(client_id, task_id)

    async def set_priority(self, client_id: int, task_id: int, priority: int) -> TaskView:
        """Give a waiting task another priority (0-9: higher is dialled first within its
        queue); InvalidInput out of range, Conflict once it runs or finished."""
        if not 0 <= priority <= 9:
            msg = "priority is 0 to 9"
            raise InvalidInput(msg, [{"loc": ["body", "priority"], "msg": msg}])
        with self.audit.change(client_id, entry("changed", "task", task_id, priority=priority)):
            changed = await self.store.set_task_priority(
                task_id, priority, self.clock.now(), client_id=client_id
            )
        if not changed:
            raise Conflict(f"task {task_id} is not waiting: only a waiting task can change")
        return await self.get(client_id, task_id)

    async def events(self, client_id: int, task_id: int) -> list[EventRow]:
        """The task's events, in order."""
        await self.store.get_task(task_id, self.clock.now(), client_id=client_id)
        return await self.store.events_for_task(task_id)


def with_callee_zones(tasks: list[NewTask], queue: QueueRow, at: datetime) -> list[NewTask]:
    """Every task added or replaced passes here: its zone (the one it names, else its
    number's, else the queue's calling-hours zone) and where that zone came from."""
    queue_zone = (queue.calling_hours or {}).get("timezone")
    for task in tasks:
        number = called_number(task.kind.value, task.payload)
        zone = callee_zone(task.timezone, number, queue_zone, at)
        task.timezone, task.timezone_source = zone.timezone, zone.source
    return tasks


def _check_expiry(
    items: list[tuple[int | None, str | None, datetime | None]], clock: Clock
) -> None:
    """InvalidInput naming each ``expires_at`` that is not in the future (index, parent)."""
    now, details = clock.now(), []
    for index, parent, expires_at in items:
        problem = check_expires_at(expires_at, now)
        if problem is not None:
            loc = [part for part in (index, parent, "expires_at") if part is not None]
            details.append({"loc": loc, "msg": problem})
    if details:
        raise InvalidInput(f"{len(details)} problem(s): expires_at; nothing was added", details)
