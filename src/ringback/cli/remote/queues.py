"""``ringback remote queue list|show|add|set|on|off|delete``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

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
from ringback.domain.calling_hours import hours_with_holidays

queue_app = typer.Typer(
    help="The server's queues: list, show, add, set, on, off, delete.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="Queue name (or id).")]
COLUMNS = [
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("limit", "concurrent_task_limit"),
    ("running", "running_count"),
    ("scheduled", "sched_task_count"),
    ("tasks", "task_count"),
    ("calls/s", "max_calls_per_second"),
    ("calling hours", "calling_hours"),
    ("last call (UTC)", "last_call_date"),
]


def _show_queues(queues: list[dict[str, Any]], as_json: bool) -> None:
    show(queues, as_json, lambda: table(queues, COLUMNS, wrap=("calling hours",)))


@queue_app.command("list")
def list_queues(as_json: JsonOpt = False) -> None:
    """List the queues."""
    with reporting(as_json):
        queues = remote().call("GET", "/task_scheduler/")["queues"]
        _show_queues(queues, as_json)


@queue_app.command("show")
def show_queue(name: NameArg, as_json: JsonOpt = False) -> None:
    """One queue, every field."""
    with reporting(as_json):
        queue = find_queue(remote(), name)
        show(queue, as_json, lambda: record(queue))


LimitOpt = Annotated[
    int | None, typer.Option("--limit", min=1, help="Calls in progress at most at once.")
]
CpsOpt = Annotated[
    float | None, typer.Option("--max-cps", "--cps", help="Calls started per second at most.")
]
HoursOpt = Annotated[
    str | None,
    typer.Option("--hours", help="Calling hours, e.g. 'mon-fri 09:00-18:00 Europe/Paris'."),
]
CommentOpt = Annotated[str | None, typer.Option("--comment", help="Free text.")]
HolidayOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--holiday",
        help="A day nobody is called, read in the callee's zone (repeat the option): MM-DD "
        "every year or YYYY-MM-DD once, optionally =NAME and @ZONE,ZONE to limit it to zones, "
        "e.g. '12-25=Christmas'. Replaces the queue's holidays.",
    ),
]


def _with_holidays(hours: Any, holidays: list[str]) -> dict[str, Any]:
    try:
        return hours_with_holidays(hours, holidays)
    except ValueError as exc:
        raise refuse(f"calling hours: {exc}") from None


@queue_app.command("add")
def add_queue(
    name: Annotated[str, typer.Argument(help="Queue name (unique per client).")],
    limit: LimitOpt = None,
    cps: CpsOpt = None,
    hours: HoursOpt = None,
    holiday: HolidayOpt = None,
    comment: CommentOpt = None,
    on: Annotated[bool, typer.Option("--on", help="Switch it on at once (else off).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a queue (switched off unless --on)."""
    body: dict[str, Any] = {"name": name, "status": "on" if on else "off"}
    if limit is not None:
        body["concurrent_task_limit"] = limit
    if cps is not None:
        body["max_calls_per_second"] = cps
    if hours is not None:
        body["calling_hours"] = hours
    if comment is not None:
        body["comment"] = comment
    with reporting(as_json):
        if holiday:
            body["calling_hours"] = _with_holidays(hours, holiday)
        queue = remote().call("POST", "/task_scheduler/", json=body)
        show(
            queue,
            as_json,
            lambda: print(f"added queue {queue['name']} (id {queue['id']}, {queue['status']})"),
        )


def _update(
    name: str, body: dict[str, Any], as_json: bool, holidays: list[str] | None = None
) -> None:
    """PUT ``body``; ``holidays`` (not None) replace those of the new calling hours in ``body``,
    else of the queue's."""
    with reporting(as_json):
        client = remote()
        queue = find_queue(client, name)
        if holidays is not None:
            hours = body.get("calling_hours") or queue.get("calling_hours")
            if not hours:
                raise refuse(f"queue {name!r} has no calling hours: give --hours with --holiday")
            body["calling_hours"] = _with_holidays(hours, holidays)
        changed = client.call("PUT", f"/task_scheduler/{queue['id']}", json=body)
        show(changed, as_json, lambda: _show_queues([changed], False))


@queue_app.command("set")
def set_queue(
    name: NameArg,
    limit: LimitOpt = None,
    cps: CpsOpt = None,
    no_cps: Annotated[bool, typer.Option("--no-max-cps", help="No calls-per-second cap.")] = False,
    hours: HoursOpt = None,
    no_hours: Annotated[bool, typer.Option("--no-hours", help="Call at any hour.")] = False,
    holiday: HolidayOpt = None,
    no_holidays: Annotated[
        bool, typer.Option("--no-holidays", help="Remove the calling hours' holidays.")
    ] = False,
    comment: CommentOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a queue's limit, rate, calling hours or comment."""
    body: dict[str, Any] = {}
    if limit is not None:
        body["concurrent_task_limit"] = limit
    if cps is not None or no_cps:
        body["max_calls_per_second"] = None if no_cps else cps
    if hours is not None or no_hours:
        body["calling_hours"] = None if no_hours else hours
    if comment is not None:
        body["comment"] = comment
    holidays = None if holiday is None and not no_holidays else holiday or []
    with reporting(as_json):
        if holiday and no_holidays:
            raise refuse("give --holiday or --no-holidays, not both")
        if no_hours and holidays is not None:
            raise refuse("--no-hours removes the holidays with the hours: drop --holiday")
        if not body and holidays is None:
            raise refuse(
                "nothing to change: give --limit, --max-cps, --hours, --holiday or --comment"
            )
    _update(name, body, as_json, holidays)


@queue_app.command("on")
def queue_on(name: NameArg, as_json: JsonOpt = False) -> None:
    """Switch a queue on: its due tasks are dialled."""
    _update(name, {"status": "on"}, as_json)


@queue_app.command("off")
def queue_off(name: NameArg, as_json: JsonOpt = False) -> None:
    """Switch a queue off: its tasks wait."""
    _update(name, {"status": "off"}, as_json)


@queue_app.command("delete")
def delete_queue(
    name: NameArg,
    force: Annotated[bool, typer.Option("--force", help="Also if it still has tasks.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a queue."""
    with reporting(as_json):
        client = remote()
        queue = find_queue(client, name)
        client.call(
            "DELETE", f"/task_scheduler/{queue['id']}", params={"force": "true" if force else None}
        )
        done = {"deleted": queue["id"], "name": queue["name"]}
        show(done, as_json, lambda: print(f"deleted queue {queue['name']} (id {queue['id']})"))
