"""``ringback dnc add|list|remove|import|check``: the client's do-not-call lists."""

from __future__ import annotations

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
    make_table,
    out,
    print_table,
    run,
    seed_time,
    unknown_client,
)
from ringback.config import Settings
from ringback.domain.suppression import DEFAULT_LIST, SuppressionRow
from ringback.domain.task_rules import parse_utc_time

if TYPE_CHECKING:
    from ringback.service import Services

dnc_app = typer.Typer(
    help="Do-not-call lists: numbers and prefixes never dialled (checked before every call).",
    no_args_is_help=True,
)
ListOpt = Annotated[str, typer.Option("--list", help="The list's name.")]
SourceOpt = Annotated[str, typer.Option("--source", help="Where the entries come from.")]
ExpiresOpt = Annotated[
    str | None,
    typer.Option("--expires", help="When the entries stop counting: 'YYYY-MM-DD HH:MM:SS' UTC."),
]


def _expiry(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return parse_utc_time(text)
    except ValueError as exc:
        raise CliError(f"--expires: {exc}") from None


def entry_dict(row: SuppressionRow) -> dict[str, Any]:
    return {
        "id": row.id, "number": row.number, "prefix": row.prefix, "list": row.list_name,
        "source": row.source, "expires_at": seed_time(row.expires_at) or None,
        "created_at": seed_time(row.created_at),
    }  # fmt: skip


@dnc_app.command("add")
def dnc_add(
    numbers: Annotated[list[str], typer.Argument(help="Numbers; a prefix ends with * ('+3361*').")],
    client: ClientOpt = "default",
    list_name: ListOpt = DEFAULT_LIST,
    source: SourceOpt = "cli",
    expires: ExpiresOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add numbers or prefixes to a list (their tasks' next attempts are not dialled)."""
    with errors():
        expiry = _expiry(expires)

    async def work(services: Services, _s: Settings) -> int:
        from ringback.service import NewEntry

        client_id = await services.clients.client_id(client)
        items = [NewEntry(n, list_name, source, expiry) for n in numbers]
        return await services.suppressions.add(client_id, items)

    added = run(work)
    if as_json:
        out.print_json(data={"added": added, "list": list_name})
        return
    err.print(f"{added} entries on list '{escape(list_name)}'")


@dnc_app.command("import")
def dnc_import(
    file: Annotated[Path, typer.Argument(help="CSV: number[,list[,source[,expires_at]]].")],
    client: ClientOpt = "default",
    list_name: ListOpt = DEFAULT_LIST,
    source: Annotated[str | None, typer.Option(help="Default source (the file's name).")] = None,
    expires: ExpiresOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a CSV file (checked whole first: a bad line adds nothing)."""
    with errors():
        expiry = _expiry(expires)
        try:
            handle = file.open(encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc.strerror}") from None

    async def work(services: Services, _s: Settings) -> int:
        client_id = await services.clients.client_id(client)
        with handle:
            return await services.suppressions.import_csv(
                client_id, handle, list_name=list_name, source=source or file.name,
                expires_at=expiry,
            )  # fmt: skip

    added = run(work)
    if as_json:
        out.print_json(data={"imported": added, "file": str(file)})
        return
    err.print(f"imported {added} entries from {escape(str(file))}")


@dnc_app.command("list")
def dnc_list(
    client: ClientOpt = "default",
    list_name: Annotated[str | None, typer.Option("--list", help="Only this list.")] = None,
    number: Annotated[str | None, typer.Option(help="Entries starting with these digits.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List entries, oldest first."""

    async def work(services: Services, _s: Settings) -> tuple[list[SuppressionRow], int]:
        client_id = await find_client(services, client)
        if client_id is None:
            if client == "default":
                return [], 0
            raise unknown_client(client)
        return await services.suppressions.list(
            client_id, list_name=list_name, number=number, limit=limit, offset=offset
        )

    rows, total = run(work)
    if as_json:
        out.print_json(data={"suppressions": [entry_dict(r) for r in rows], "total": total})
        return
    table = make_table("id", "entry", "list", "source", "expires (UTC)", "added (UTC)")
    for r in rows:
        table.add_row(
            str(r.id), r.number + ("*" if r.prefix else ""), escape(r.list_name),
            escape(r.source), seed_time(r.expires_at), seed_time(r.created_at),
        )  # fmt: skip
    print_table(table)
    err.print(f"{len(rows)} of {total}")


@dnc_app.command("remove")
def dnc_remove(
    number: Annotated[str | None, typer.Argument(help="A number, or a prefix ending in *.")] = None,
    client: ClientOpt = "default",
    list_name: Annotated[str | None, typer.Option("--list", help="Only on this list.")] = None,
    entry_id: Annotated[int | None, typer.Option("--id", help="One entry by its id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a number or prefix (from one list with --list), a whole --list, or --id N."""
    with errors():
        if entry_id is None and number is None and list_name is None:
            raise CliError("give a NUMBER, --list or --id")

    async def work(services: Services, _s: Settings) -> int:
        client_id = await find_client(services, client)
        if client_id is None:
            raise unknown_client(client)
        if entry_id is not None:
            await services.suppressions.remove(client_id, entry_id)
            return 1
        return await services.suppressions.remove_matching(
            client_id, number=number, list_name=list_name
        )

    removed = run(work)
    if as_json:
        out.print_json(data={"removed": removed})
        return
    err.print(f"removed {removed} entries")


@dnc_app.command("check")
def dnc_check(number: str, client: ClientOpt = "default", as_json: JsonOpt = False) -> None:
    """Whether a call to NUMBER would be refused now (exit 1 if so) and by which entry."""

    async def work(services: Services, _s: Settings) -> str | None:
        client_id = await find_client(services, client)
        if client_id is None:
            return None
        found = await services.suppressions.check(client_id, number)
        return None if found is None else found.reason()

    reason = run(work)
    if as_json:
        out.print_json(data={"number": number, "suppressed": reason is not None, "reason": reason})
    else:
        out.print(escape(reason or "not suppressed"))
    if reason:
        raise typer.Exit(1)
