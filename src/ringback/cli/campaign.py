"""``ringback caps show|set|clear`` and ``ringback callerid show|set|clear``: a client's
frequency caps per callee and allowed caller ids (checked before every call)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ringback.cli.common import (
    ClientOpt,
    CliError,
    JsonOpt,
    err,
    errors,
    find_client,
    out,
    run,
)
from ringback.config import Settings
from ringback.domain.frequency_caps import CallerIdEntry, CapRule, parse_rule

if TYPE_CHECKING:
    from ringback.service import Services

caps_app = typer.Typer(
    help="Frequency caps: at most N calls to one number per window, across queues.",
    no_args_is_help=True,
)
callerid_app = typer.Typer(
    help="Allowed caller ids: the numbers (or prefixes) the client's calls may show.",
    no_args_is_help=True,
)


def caps_text(rules: list[CapRule]) -> str:
    if not rules:
        return "no frequency cap"
    return ", ".join(r.describe().replace(" per ", "/") for r in rules)


def ids_text(entries: list[CallerIdEntry]) -> str:
    return " ".join(e.text() for e in entries) if entries else "any caller id (no list)"


@caps_app.command("show")
def caps_show(client: ClientOpt = "default", as_json: JsonOpt = False) -> None:
    """The client's caps."""

    async def work(services: Services, _s: Settings) -> list[CapRule]:
        client_id = await find_client(services, client)
        return [] if client_id is None else await services.campaign_rules.frequency_caps(client_id)

    rules = run(work)
    if as_json:
        shown = [{"max_calls": r.max_calls, "window_seconds": r.window_seconds} for r in rules]
        out.print_json(data={"rules": shown})
        return
    out.print(caps_text(rules))


@caps_app.command("set")
def caps_set(
    rules: Annotated[
        list[str], typer.Argument(help="Caps as CALLS/WINDOW: 3/24h 1/1h (units s, m, h, d).")
    ],
    client: ClientOpt = "default",
) -> None:
    """Replace the client's caps (a call must fit every one; one that would not waits)."""
    with errors():
        try:
            parsed = [parse_rule(text) for text in rules]
        except ValueError as exc:
            raise CliError(str(exc)) from None

    async def work(services: Services, _s: Settings) -> list[CapRule]:
        client_id = await services.clients.client_id(client)
        pairs = [(r.max_calls, r.window_seconds) for r in parsed]
        return await services.campaign_rules.set_frequency_caps(client_id, pairs, field="RULES")

    err.print(f"frequency caps: {caps_text(run(work))}")


@caps_app.command("clear")
def caps_clear(client: ClientOpt = "default") -> None:
    """Remove every cap of the client."""

    async def work(services: Services, _s: Settings) -> None:
        client_id = await find_client(services, client)
        if client_id is not None:
            await services.campaign_rules.set_frequency_caps(client_id, [])

    run(work)
    err.print("frequency caps: none")


@callerid_app.command("show")
def callerid_show(client: ClientOpt = "default", as_json: JsonOpt = False) -> None:
    """The client's allowed caller ids."""

    async def work(services: Services, _s: Settings) -> list[CallerIdEntry]:
        client_id = await find_client(services, client)
        return [] if client_id is None else await services.campaign_rules.caller_ids(client_id)

    entries = run(work)
    if as_json:
        out.print_json(data={"caller_ids": [e.text() for e in entries]})
        return
    out.print(ids_text(entries))


@callerid_app.command("set")
def callerid_set(
    numbers: Annotated[list[str], typer.Argument(help="Numbers; a prefix ends with * ('+331*').")],
    client: ClientOpt = "default",
) -> None:
    """Replace the client's allowed caller ids (tasks naming another one are refused)."""

    async def work(services: Services, _s: Settings) -> list[CallerIdEntry]:
        client_id = await services.clients.client_id(client)
        return await services.campaign_rules.set_caller_ids(client_id, numbers, field="NUMBERS")

    err.print(f"allowed caller ids: {ids_text(run(work))}")


@callerid_app.command("clear")
def callerid_clear(client: ClientOpt = "default") -> None:
    """Remove the list: any caller id is allowed again."""

    async def work(services: Services, _s: Settings) -> None:
        client_id = await find_client(services, client)
        if client_id is not None:
            await services.campaign_rules.set_caller_ids(client_id, [])

    run(work)
    err.print("allowed caller ids: any caller id (no list)")
