"""``ringback task add|list|show``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ringback.cli.common import (
    ClientOpt,
    CliError,
    JsonOpt,
    err,
    errors,
    escape,
    find_client,
    find_queue,
    make_table,
    out,
    print_table,
    run,
    seed_time,
    unknown_client,
)
from ringback.cli.task_input import TaskSource, checked, task_source
from ringback.client_files import Storage, StorageError
from ringback.config import Settings
from ringback.domain.model import DEFAULT_QUEUE, TaskStatus
from ringback.domain.rows import CallRow, InvalidInput, NotFound, TaskRow

if TYPE_CHECKING:
    from ringback.service import Services

task_app = typer.Typer(help="Add, list and inspect tasks.", no_args_is_help=True)

#: statuses stored on a task (``delayed_concurrent_task`` is worked out when a task is read)
STORED_STATUSES = tuple(s.value for s in TaskStatus if s is not TaskStatus.DELAYED_CONCURRENT_TASK)


def task_dict(task: TaskRow) -> dict[str, Any]:
    return {
        "id": task.id,
        "kind": task.kind.value,
        "name": task.name,
        "queue_id": task.queue_id,
        "status": task.status,
        "blocked_reason": task.blocked_reason,
        "finish_result": task.finish_result,
        "finish_comment": task.finish_comment,
        "cdr": task.cdr,
        "attempt": task.attempt,
        "try_count": task.max_tries,
        "tries_used": task.tries_used,
        "try_count_caller": task.max_caller_tries,
        "caller_tries_used": task.caller_tries_used,
        "next_run_at": seed_time(task.run_at) if task.stored_status != "finished" else None,
        "start_time_utc": seed_time(task.start_time_utc) or None,
        "timezone": task.timezone,
        "timezone_source": task.timezone_source,
        "expires_at": seed_time(task.expires_at) or None,
        "priority": task.priority,
        "create_date_utc": seed_time(task.created_at),
        "finish_date_utc": seed_time(task.finished_at) or None,
        "data": task.payload,
    }


def call_dict(call: CallRow) -> dict[str, Any]:
    return {
        "call_uuid": call.call_uuid,
        "leg_uuid": call.leg_uuid,
        "leg": call.leg,
        "attempt": call.attempt,
        "from": call.from_number,
        "to": call.to_number,
        "sip_code": call.sip_code,
        "outcome": call.outcome,
        "hangup_cause": call.hangup_cause,
        "hangup_disposition": call.hangup_disposition,
        "state": call.state,
        "start": seed_time(call.started_at),
        "answer": seed_time(call.answered_at) or None,
        "end": seed_time(call.ended_at) or None,
        "duration": None if call.duration_ms is None else round(call.duration_ms / 1000),
        "billsec": None if call.billsec_ms is None else round(call.billsec_ms / 1000),
        "bridged": seed_time(call.bridged_at) or None,
        "played": call.played,
        "dtmf_received": call.dtmf_received,
        "fax": call.fax,
        "amd": call.amd,
    }


@task_app.command("add")
def task_add(
    client: ClientOpt = "default",
    queue: Annotated[str | None, typer.Option(help="Queue name (default: 'default').")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="JSON file of many tasks: "
            'AddJob objects and/or scheduler tasks, or {"tasks": [...]}.',
        ),
    ] = None,
    kind: Annotated[str | None, typer.Option(help="msg_call, ivr_call or callback.")] = None,
    called_number: Annotated[str | None, typer.Option("--to", help="Number to call.")] = None,
    calling_number: Annotated[str | None, typer.Option("--from", help="Caller id.")] = None,
    audio_file: Annotated[str | None, typer.Option(help="msg_call: storage file.")] = None,
    ivr_file: Annotated[str | None, typer.Option(help="ivr_call: local XML file.")] = None,
    ivr_inline: Annotated[str | None, typer.Option(help="ivr_call: XML text.")] = None,
    ivr_storage: Annotated[str | None, typer.Option(help="ivr_call: storage XML file.")] = None,
    attempts: Annotated[int | None, typer.Option(help="Tries in all (1-50).")] = None,
    delay_ms: Annotated[int | None, typer.Option(help="Defer the first try (ms).")] = None,
    backoff: Annotated[str | None, typer.Option(help="fixed or exponential.")] = None,
    backoff_delay_ms: Annotated[int | None, typer.Option(help="Backoff delay (ms).")] = None,
    jitter: Annotated[float | None, typer.Option(help="Backoff jitter, 0 to 1.")] = None,
    a_number: Annotated[str | None, typer.Option(help="callback: called first.")] = None,
    b_number: Annotated[str | None, typer.Option(help="callback: called second.")] = None,
    extended_a: Annotated[
        list[str] | None,
        typer.Option(help="callback: more A numbers, rung with a_number (repeatable)."),
    ] = None,
    caller_id_number: Annotated[str | None, typer.Option(help="callback: caller id.")] = None,
    caller_id_name: Annotated[str | None, typer.Option(help="callback: caller name.")] = None,
    name: Annotated[str | None, typer.Option(help="callback: task name.")] = None,
    try_count: Annotated[int | None, typer.Option(help="callback: tries (1-50).")] = None,
    try_again_pause: Annotated[float | None, typer.Option(help="callback: pause (s).")] = None,
    try_count_caller: Annotated[int | None, typer.Option(help="callback: A tries.")] = None,
    try_again_pause_caller: Annotated[
        float | None, typer.Option(help="callback: A pause (s).")
    ] = None,
    start_time: Annotated[str | None, typer.Option(help="'YYYY-MM-DD HH:MM:SS' UTC.")] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="IANA zone for calling hours (default: the number's, else the queue's)."),
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="Not done by then: finished failed (UTC time).")
    ] = None,
    priority: Annotated[
        int | None, typer.Option(min=0, max=9, help="0-9 (default 5): higher dialled first.")
    ] = None,
    amd: Annotated[
        str | None,
        typer.Option(help="Answering-machine detection: off, continue, hangup, wait_for_beep."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add one task from flags, or many from a JSON file (all or nothing)."""
    flags = dict(locals())
    with errors():  # everything is checked before the database is opened
        source = task_source(file, flags)
        jobs, callbacks = checked(source, queue)

    async def work(services: Services, settings: Settings) -> list[int]:
        named = {queue} if queue else set()
        named |= {item["queue"] for _, item in jobs if item.get("queue")}
        named.discard(DEFAULT_QUEUE)
        client_id = await find_client(services, client)
        for queue_name in sorted(named):  # every queue exists before anything is written
            await find_queue(services, client_id, queue_name, client)
        storage = Storage(settings.storage_dir)
        # client ids start at 1: a client not made yet has no folder, so nothing to escape by
        missing = _audio_files(storage, client_id or 0, source, jobs)
        if client_id is None:
            client_id = await services.clients.client_id(client)
        ids: dict[int, int] = {}
        target = None
        if callbacks:
            target = (
                await services.queues.ensure(client_id, DEFAULT_QUEUE, status="on")
                if queue in (None, DEFAULT_QUEUE)
                else await find_queue(services, client_id, queue, client)
            )
        if jobs:
            added = await services.tasks.add_jobs(client_id, [item for _, item in jobs])
            ids.update(zip([i for i, _ in jobs], added, strict=True))
        if callbacks and target is not None:
            added = await services.tasks.add_callback_tasks(
                client_id, target.id, [item for _, item in callbacks]
            )
            ids.update(zip([i for i, _ in callbacks], added, strict=True))
        for audio in missing[:5]:
            err.print(
                f"[yellow]warning:[/yellow] {escape(audio)} is not in "
                f"{escape(str(storage.client_dir(client_id)))}/ yet: "
                "the call fails unless the file is there when the task runs"
            )
        return [ids[i] for i in sorted(ids)]

    ids = run(work)
    if as_json:
        out.print_json(data={"ids": ids})
    else:
        out.print(
            f"added {len(ids)} task(s): {', '.join(str(i) for i in ids[:20])}"
            f"{' …' if len(ids) > 20 else ''}"
        )


def _audio_files(
    storage: Storage, client_id: int, source: TaskSource, jobs: list[tuple[int, dict[str, Any]]]
) -> list[str]:
    """The msg_call audio files not in storage yet; InvalidInput for paths storage refuses."""
    missing: list[str] = []
    problems: list[dict[str, Any]] = []
    for index, job in jobs:
        audio = job["data"]["audio_file"] if job["type"] == "msg_call" else None
        if not isinstance(audio, str) or audio in missing:
            continue
        loc = ["data", "audio_file"]
        try:
            if not storage.exists(client_id, audio):
                missing.append(audio)
        except StorageError as exc:
            problems.append(
                {"loc": [index, *loc], "where": source.where(index, loc), "msg": str(exc)}
            )
    if problems:
        raise InvalidInput(source.problem(len(problems)), problems)
    return missing


@task_app.command("list")
def task_list(
    client: ClientOpt = "default",
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help=f"Only this stored status: {', '.join(STORED_STATUSES)}."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List tasks, oldest first."""
    with errors():
        if status == TaskStatus.DELAYED_CONCURRENT_TASK:
            raise CliError(
                "delayed_concurrent_task is worked out when a task is read, not stored: "
                "list --status scheduled or delayed and look at the status column"
            )
        if status is not None and status not in STORED_STATUSES:
            raise CliError(f"--status {status!r}: use one of {', '.join(STORED_STATUSES)}")

    async def work(services: Services, _s: Settings) -> list[TaskRow]:
        client_id = await find_client(services, client)
        queue_id = (await find_queue(services, client_id, queue, client)).id if queue else None
        if client_id is None:
            if client == "default":
                return []
            raise unknown_client(client)
        return await services.tasks.rows(
            client_id=client_id, queue_id=queue_id, status=status, limit=limit, offset=offset
        )

    tasks = run(work)
    if as_json:
        out.print_json(data=[task_dict(task) for task in tasks])
        return
    table = make_table(
        "id",
        "kind",
        "to",
        "status",
        "result",
        "attempt",
        "next run (UTC)",
        "comment",
        wrap=("comment",),
    )
    for task in tasks:
        to = task.payload.get("called_number") or task.payload.get("a_number") or ""
        table.add_row(
            str(task.id),
            task.kind.value,
            escape(str(to)),
            task.status,
            task.finish_result or "",
            f"{task.attempt}/{task.max_tries}",
            seed_time(task.run_at) if task.stored_status != "finished" else "",
            escape(task.finish_comment or task.blocked_reason or ""),
        )
    print_table(table)


def _event_summary(kind: str, data: dict[str, Any]) -> str:
    if kind.startswith("call.") and "to_number" in data:
        source = data.get("from_number")
        text = f"{data.get('leg')} {source + ' ' if source else ''}→ {data['to_number']}: "
        text += str(data.get("outcome"))
        if data.get("sip_code"):
            text += f" (SIP {data['sip_code']})"
        if data.get("hangup_cause"):
            text += f", {data['hangup_cause']}"
        if isinstance(data.get("billsec"), int | float):
            text += f", billsec {data['billsec']:.1f}s"
        return text
    return ", ".join(
        f"{key}={value}" if not isinstance(value, dict | list) else f"{key}={json.dumps(value)}"
        for key, value in data.items()
    )


def _shown_path(file: str, folder: Path) -> str:
    """A played file, relative to the client's storage folder when it is inside it."""
    try:
        return str(Path(file).relative_to(folder))
    except ValueError:
        return file


@task_app.command("priority")
def task_priority(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    priority: Annotated[int, typer.Argument(min=0, max=9, help="0-9: higher dialled first.")],
    client: ClientOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Change a waiting task's priority (within its queue higher is dialled first)."""

    async def work(services: Services, _s: Settings) -> None:
        client_id = await find_client(services, client)
        if client_id is None:
            raise NotFound(f"no task {task_id}")
        await services.tasks.set_priority(client_id, task_id, priority)

    run(work)
    if as_json:
        out.print_json(data={"task_id": task_id, "priority": priority})
        return
    err.print(f"task {task_id}: priority {priority}")


@task_app.command("show")
def task_show(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    client: ClientOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Show one task with its calls and events."""

    async def work(services: Services, settings: Settings) -> tuple[dict[str, Any], Path]:
        client_id = await find_client(services, client)
        if client_id is None:
            raise NotFound(f"no task {task_id}")
        view = task_dict((await services.tasks.get(client_id, task_id)).row)
        legs = await services.history.legs(task_id=task_id)
        view["calls"] = [call_dict(call) for call in legs]
        view["events"] = [
            {"seq": e.seq, "type": e.type, "at": seed_time(e.occurred_at), "data": e.data}
            for e in await services.tasks.events(client_id, task_id)
        ]
        folder = Storage(settings.storage_dir).client_dir(client_id).resolve()
        return view, folder

    view, folder = run(work)
    if as_json:
        out.print_json(data=view)
        return
    out.print(
        f"[bold]task {view['id']}[/bold] ({view['kind']}) — [bold]{view['status']}[/bold]"
        f"{' / ' + view['finish_result'] if view['finish_result'] else ''}"
        f"{' — ' + escape(view['finish_comment']) if view['finish_comment'] else ''}"
        f"{' (' + view['blocked_reason'] + ')' if view['blocked_reason'] else ''}"
    )
    out.print(
        f"attempt {view['attempt']} of {view['try_count']}; created "
        f"{view['create_date_utc']}; next run {view['next_run_at'] or '-'}"
    )
    if view["timezone"] or view["timezone_source"]:
        out.print(f"callee's time zone {view['timezone'] or '-'} ({view['timezone_source']})")
    out.print_json(data=view["data"])
    calls = make_table(
        "attempt",
        "leg",
        "to",
        "outcome",
        "sip",
        "start",
        "answer",
        "end",
        "billsec",
        "played",
        wrap=("played",),
        title="calls",
    )
    for call in view["calls"]:
        played = ", ".join(
            _shown_path(p["file"], folder) if p.get("file") else str(p.get("text", ""))
            for p in call["played"]
        )
        calls.add_row(
            str(call["attempt"]),
            call["leg"],
            escape(call["to"]),
            call["outcome"] or "",
            str(call["sip_code"] or ""),
            call["start"],
            call["answer"] or "",
            call["end"] or "",
            "" if call["billsec"] is None else str(call["billsec"]),
            escape(played),
        )
    print_table(calls)
    events = make_table("seq", "event", "at (UTC)", "data", wrap=("data",), title="events")
    for ev in view["events"]:
        events.add_row(
            str(ev["seq"]), ev["type"], ev["at"], escape(_event_summary(ev["type"], ev["data"]))
        )
    print_table(events)
