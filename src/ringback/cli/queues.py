"""``ringback queue add|set|on|off|list``."""

from __future__ import annotations

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
from ringback.config import Settings
from ringback.domain.rows import QueueChanges, QueueRow

if TYPE_CHECKING:
    from ringback.service import Services

queue_app = typer.Typer(help="Create, switch and list queues.", no_args_is_help=True)


def queue_dict(queue: QueueRow) -> dict[str, Any]:
    return {
        "id": queue.id,
        "name": queue.name,
        "comment": queue.comment,
        "status": queue.status,
        "concurrent_task_limit": queue.concurrent_task_limit,
        "max_calls_per_second": queue.max_calls_per_second,
        "calling_hours": queue.calling_hours,
        "redial_interrupted": queue.redial_interrupted,
        "task_ttl_seconds": queue.task_ttl_seconds,
        "task_count": queue.task_count,
        "sched_task_count": queue.sched_task_count,
        "running": queue.running_count,
        "last_call_date": seed_time(queue.last_call_at) or None,
        "create_date_utc": seed_time(queue.created_at),
    }


def _print_queues(queues: list[QueueRow], as_json: bool) -> None:
    if as_json:
        out.print_json(data=[queue_dict(q) for q in queues])
        return
    table = make_table(
        "id",
        "name",
        "status",
        "limit",
        "running",
        "scheduled",
        "tasks",
        "calls/s",
        "calling hours",
        "last call (UTC)",
        wrap=("calling hours",),
    )
    for q in queues:
        hours = ""
        if q.calling_hours:
            from ringback.domain.calling_hours import CallingHours

            hours = CallingHours.parse(q.calling_hours).describe()
        table.add_row(
            str(q.id),
            escape(q.name),
            "[green]on[/green]" if q.status == "on" else "[yellow]off[/yellow]",
            str(q.concurrent_task_limit),
            str(q.running_count),
            str(q.sched_task_count),
            str(q.task_count),
            str(q.max_calls_per_second or ""),
            escape(hours),
            seed_time(q.last_call_at),
        )
    print_table(table)


LimitOpt = Annotated[
    int | None,
    typer.Option("--limit", min=1, max=10_000, help="concurrent_task_limit: calls at once."),
]
CpsOpt = Annotated[
    float | None, typer.Option("--max-cps", min=0.001, help="max_calls_per_second (token bucket).")
]
RedialOpt = Annotated[
    bool | None,
    typer.Option(
        "--redial-interrupted/--no-redial-interrupted",
        help="Try a task again when a fault on ringback's side (a worker lost or stopped) cut "
        "its call, which the callee may have answered (default: no, it finishes failed).",
    ),
]
TtlOpt = Annotated[
    int | None,
    typer.Option("--ttl", min=1, help="Tasks added without an expiry expire this many s later."),
]
HoursOpt = Annotated[
    str | None,
    typer.Option(
        "--hours",
        help="Calling hours, e.g. 'Europe/Paris mon-fri 09:00-18:00, sat 10:00-13:00'.",
    ),
]

HolidayOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--holiday",
        help="A day nobody is called, read in the callee's zone (repeat the option): MM-DD "
        "every year or YYYY-MM-DD once, optionally =NAME and @ZONE,ZONE to limit it to zones, "
        "e.g. '12-25=Christmas' or '2026-05-01@Europe/Paris'. Replaces the queue's holidays.",
    ),
]
NoHolidaysOpt = Annotated[
    bool, typer.Option("--no-holidays", help="Remove the calling hours' holidays.")
]


@queue_app.command("add")
def queue_add(
    name: Annotated[str, typer.Argument(help="Queue name (unique per client).")],
    client: ClientOpt = "default",
    limit: LimitOpt = None,
    on: Annotated[bool, typer.Option("--on", help="Switch it on now (default: off).")] = False,
    comment: Annotated[str, typer.Option(help="Free comment.")] = "",
    max_cps: CpsOpt = None,
    hours: HoursOpt = None,
    holiday: HolidayOpt = None,
    redial_interrupted: RedialOpt = None,
    ttl: TtlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a queue (switched off unless --on, as the API creates them)."""
    from ringback.service import calling_hours_with_holidays, parse_calling_hours

    with errors():
        if not name.strip():
            raise CliError("a queue needs a name")
        calling_hours = parse_calling_hours(hours) if hours else None
        if holiday:
            calling_hours = calling_hours_with_holidays(hours, holiday)

    async def work(services: Services, _s: Settings) -> QueueRow:
        client_id = await services.clients.client_id(client)
        return await services.queues.create(
            client_id,
            name,
            comment=comment,
            status="on" if on else "off",
            concurrent_task_limit=limit or 10,
            max_calls_per_second=max_cps,
            calling_hours=calling_hours,
            redial_interrupted=bool(redial_interrupted),
            task_ttl_seconds=ttl,
        )

    queue = run(work)
    _print_queues([queue], as_json)
    if queue.status == "off" and not as_json:
        err.print(f"queue '{escape(name)}' is off: 'ringback queue on {escape(name)}' starts it")


@queue_app.command("set")
def queue_set(
    name: str,
    client: ClientOpt = "default",
    limit: LimitOpt = None,
    max_cps: CpsOpt = None,
    no_max_cps: Annotated[
        bool, typer.Option("--no-max-cps", help="Remove the calls-per-second limit.")
    ] = False,
    hours: HoursOpt = None,
    no_hours: Annotated[bool, typer.Option("--no-hours", help="Remove calling hours.")] = False,
    holiday: HolidayOpt = None,
    no_holidays: NoHolidaysOpt = False,
    comment: Annotated[str | None, typer.Option(help="Free comment.")] = None,
    redial_interrupted: RedialOpt = None,
    ttl: TtlOpt = None,
    no_ttl: Annotated[bool, typer.Option("--no-ttl", help="Remove the time-to-live.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Change a queue's limit, rate, calling hours or comment."""
    from ringback.service import calling_hours_with_holidays, parse_calling_hours

    with errors():
        if hours and no_hours:
            raise CliError("give --hours or --no-hours, not both")
        if holiday and no_holidays:
            raise CliError("give --holiday or --no-holidays, not both")
        if no_hours and (holiday or no_holidays):
            raise CliError("--no-hours removes the holidays with the hours: drop --holiday")
        holidays = None if holiday is None and not no_holidays else holiday or []
        if max_cps is not None and no_max_cps:
            raise CliError("give --max-cps or --no-max-cps, not both")
        if (limit, max_cps, hours, comment, redial_interrupted, ttl, holidays) == (
            None,
        ) * 7 and not (no_hours or no_max_cps or no_ttl):
            raise CliError(
                "nothing to change: give --limit, --max-cps, --no-max-cps, --hours, --no-hours, "
                "--holiday, --no-holidays, --[no-]redial-interrupted or --comment"
            )
        changes = QueueChanges(
            comment=comment,
            concurrent_task_limit=limit,
            max_calls_per_second=max_cps,
            clear_max_calls_per_second=no_max_cps,
            calling_hours=parse_calling_hours(hours) if hours else None,
            clear_calling_hours=no_hours,
            redial_interrupted=redial_interrupted,
            task_ttl_seconds=ttl,
            clear_task_ttl_seconds=no_ttl,
        )

    async def work(services: Services, _s: Settings) -> QueueRow:
        client_id = await find_client(services, client)
        queue = await find_queue(services, client_id, name, client)
        if holidays is not None:  # into the new hours, else the queue's
            if not (changes.calling_hours or queue.calling_hours):
                raise CliError(f"queue {name!r} has no calling hours: give --hours with --holiday")
            changes.calling_hours = calling_hours_with_holidays(
                changes.calling_hours or queue.calling_hours, holidays
            )
        return await services.queues.change(queue.client_id, queue.id, changes)

    _print_queues([run(work)], as_json)


def _switch(name: str, client: str, status: str, as_json: bool) -> None:
    async def work(services: Services, _s: Settings) -> QueueRow:
        client_id = await find_client(services, client)
        queue = await find_queue(services, client_id, name, client)
        return await services.queues.set_status(queue.client_id, name, status)

    _print_queues([run(work)], as_json)


@queue_app.command("on")
def queue_on(name: str, client: ClientOpt = "default", as_json: JsonOpt = False) -> None:
    """Switch a queue on: its due tasks start dialing."""
    _switch(name, client, "on", as_json)


@queue_app.command("off")
def queue_off(name: str, client: ClientOpt = "default", as_json: JsonOpt = False) -> None:
    """Switch a queue off: nothing new is dialed; running calls finish."""
    _switch(name, client, "off", as_json)


@queue_app.command("list")
def queue_list(client: ClientOpt = "default", as_json: JsonOpt = False) -> None:
    """List the client's queues with their counters."""

    async def work(services: Services, _s: Settings) -> list[QueueRow]:
        client_id = await find_client(services, client)
        if client_id is None:
            if client == "default":
                return []  # a fresh database
            raise unknown_client(client)
        return await services.queues.list(client_id)

    _print_queues(run(work), as_json)
