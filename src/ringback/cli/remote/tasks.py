"""``ringback remote task list|show|add|cancel|retry|import``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ringback.cli.output import out
from ringback.cli.remote.exports import export_tasks
from ringback.cli.remote.http import RemoteClient, RemoteError, unsupported
from ringback.cli.remote.intake_cmd import import_tasks
from ringback.cli.remote.shell import (
    JsonOpt,
    find_queue,
    record,
    refuse,
    remote,
    reporting,
    show,
    table,
)

task_app = typer.Typer(
    help="The server's tasks: list, show, add, cancel, retry, import (CSV, JSONL, JSON).",
    no_args_is_help=True,
)
task_app.command("import")(import_tasks)
task_app.command("export")(export_tasks)

QueueOpt = Annotated[str | None, typer.Option("--queue", "-q", help="Queue name (or id).")]
IdArg = Annotated[int, typer.Argument(help="Task id.")]
COLUMNS = [
    ("id", "id"),
    ("queue", "queue"),
    ("kind", "kind"),
    ("name", "name"),
    ("status", "status"),
    ("result", "finish_result"),
    ("comment", "finish_comment"),
    ("tries", "tries_used"),
    ("next run (UTC)", "next_run_at"),
    ("created (UTC)", "create_date_utc"),
]
CALL_COLUMNS = [
    ("attempt", "attempt"),
    ("leg", "leg"),
    ("to", "to"),
    ("from", "from"),
    ("SIP", "sip_code"),
    ("outcome", "outcome"),
    ("start (UTC)", "start_time_utc"),
    ("duration", "duration"),
]


def _queues(client: RemoteClient, name: str | None) -> list[dict[str, Any]]:
    if name is not None:
        return [find_queue(client, name)]
    queues: list[dict[str, Any]] = client.call("GET", "/task_scheduler/")["queues"]
    return queues


@task_app.command("list")
def list_tasks(
    queue: QueueOpt = None,
    status: Annotated[
        str | None, typer.Option("--status", help="e.g. scheduled, finished.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Tasks of this name.")] = None,
    created_from: Annotated[str | None, typer.Option("--created-from", help="ISO time.")] = None,
    created_to: Annotated[str | None, typer.Option("--created-to", help="ISO time.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Per queue.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List tasks (of one queue, or of each queue), newest first."""
    params = {
        "status": status,
        "name": name,
        "created_from": created_from,
        "created_to": created_to,
        "limit": limit,
        "offset": offset,
    }
    with reporting(as_json):
        client = remote()
        rows: list[dict[str, Any]] = []
        total = 0
        for q in _queues(client, queue):
            page = client.call("GET", f"/task_scheduler/{q['id']}/tasks/", params=params)
            total += page["total"]
            rows += [{**task, "queue": q["name"]} for task in page["tasks"]]

        def human() -> None:
            table(rows, COLUMNS, wrap=("comment",))
            if total > len(rows):
                out.print(f"{len(rows)} of {total} shown: see --limit and --offset")

        show({"tasks": rows, "total": total}, as_json, human)


def _find_task(client: RemoteClient, task_id: int, queue: str | None) -> dict[str, Any]:
    for q in _queues(client, queue):
        try:
            task: dict[str, Any] = client.call("GET", f"/task_scheduler/{q['id']}/tasks/{task_id}")
        except RemoteError as exc:
            if exc.status == 404:
                continue
            raise
        return {**task, "queue": q["name"]}
    raise RemoteError(f"no task {task_id} on this server", error="not_found", status=404)


def _events(client: RemoteClient, task: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The task's events, when the server has a route for them (None otherwise)."""
    if not client.has_operation("get", "/tasks/{task_id}/events"):
        return None
    answer = client.call("GET", f"/task_scheduler/{task['scheduler_id']}/tasks/{task['id']}/events")
    events: list[dict[str, Any]] = (
        answer.get("events", answer) if isinstance(answer, dict) else answer
    )
    return events


@task_app.command("show")
def show_task(task_id: IdArg, queue: QueueOpt = None, as_json: JsonOpt = False) -> None:
    """A task with its calls (and its events, when the server lists them)."""
    with reporting(as_json):
        client = remote()
        task = _find_task(client, task_id, queue)
        events = _events(client, task)
        if events is not None:
            task["events"] = events

        def human() -> None:
            record({k: v for k, v in task.items() if k not in ("calls", "events")})
            if task.get("calls"):
                table(task["calls"], CALL_COLUMNS, title="calls")
            else:
                out.print("calls: none yet")
            if events is None:
                out.print("events: not supported by this server (its API does not list them)")
            else:
                table(
                    events,
                    [("at", "at"), ("type", "type"), ("data", "data")],
                    wrap=("data",),
                    title="events",
                )

        show(task, as_json, human)


@task_app.command("add")
def add_task(
    queue: Annotated[str, typer.Option("--queue", "-q", help="Queue name (or id).")],
    a_number: Annotated[str | None, typer.Option("--a-number", help="Called first.")] = None,
    b_number: Annotated[str | None, typer.Option("--b-number", help="Then bridged to.")] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    try_count: Annotated[int | None, typer.Option("--try-count", min=1)] = None,
    try_again_pause: Annotated[
        float | None, typer.Option("--try-again-pause", help="Seconds.")
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="start_time_utc, ISO.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="JSON: a list of tasks or {tasks: [...]}.")
    ] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add callback tasks (call A, then B, bridge them): one from the options, or a JSON file
    (all or nothing; for big files see 'task import')."""
    with reporting(as_json):
        if file is not None:
            try:
                loaded = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise refuse(f"--file {file}: {exc}") from None
            tasks = loaded.get("tasks") if isinstance(loaded, dict) else loaded
            if not isinstance(tasks, list):
                raise refuse(f'--file {file}: expected a list of tasks or {{"tasks": [...]}}')
        else:
            if not (a_number and b_number):
                raise refuse("give --a-number and --b-number (or --file)")
            task: dict[str, Any] = {"a_number": a_number, "b_number": b_number}
            for key, value in (
                ("name", name),
                ("try_count", try_count),
                ("try_again_pause", try_again_pause),
                ("start_time_utc", start),
            ):
                if value is not None:
                    task[key] = value
            tasks = [task]
        client = remote()
        q = find_queue(client, queue)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        added = client.call(
            "POST", f"/task_scheduler/{q['id']}/tasks/", json={"tasks": tasks}, headers=headers
        )["tasks"]
        ids = [t["id"] for t in added]
        show(
            added,
            as_json,
            lambda: print(
                f"added {len(ids)} task(s): "
                + ", ".join(map(str, ids[:50]))
                + (" …" if len(ids) > 50 else "")
            ),
        )


@task_app.command("cancel")
def cancel_task(task_id: IdArg, queue: QueueOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel a task that has not finished (it ends failed / canceled)."""
    with reporting(as_json):
        client = remote()
        task = _find_task(client, task_id, queue)
        done = client.call("DELETE", f"/task_scheduler/{task['scheduler_id']}/tasks/{task_id}")
        show(
            done,
            as_json,
            lambda: print(
                f"canceled task {task_id}: {done['status']} / {done.get('finish_result')}"
            ),
        )


@task_app.command("retry")
def retry_task(task_id: IdArg, queue: QueueOpt = None, as_json: JsonOpt = False) -> None:
    """Dial a waiting task now (when the server has the operation)."""
    with reporting(as_json):
        client = remote()
        if not client.has_operation("post", "/tasks/{task_id}/retry"):
            raise unsupported("retrying a task now")
        task = _find_task(client, task_id, queue)
        done = client.call("POST", f"/task_scheduler/{task['scheduler_id']}/tasks/{task_id}/retry")
        show(done, as_json, lambda: print(f"task {task_id} will be dialled now"))
