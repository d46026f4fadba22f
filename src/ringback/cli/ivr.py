"""``ringback ivr check FILE…`` and ``ringback ivr run FILE``: the commands and their options;
their work (the IVR, and the database with --client) is in ``ivr_work``, imported when run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ringback.cli.common import JsonOpt

ivr_app = typer.Typer(help="Check IVR documents and try them on a simulated call.")


@ivr_app.command("check")
def ivr_check(
    files: Annotated[list[Path], typer.Argument(help="IVR XML documents to validate.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")] = False,
    client: Annotated[
        str | None,
        typer.Option(
            "--client",
            help="Also check, in this client's storage, the documents SendFax sends (a "
            "literal path: it exists and converts to fax pages; opens the database).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate IVR documents: exit 0 when all are valid, 1 printing every error."""
    from ringback.cli import ivr_work

    ivr_work.check(files, quiet, client, as_json)


@ivr_app.command("run")
def ivr_run(
    file: Annotated[
        str, typer.Argument(help="The IVR XML document: a file, or an answer URL list.")
    ],
    var: Annotated[
        list[str] | None, typer.Option("--var", help="A call variable NAME=VALUE (repeatable).")
    ] = None,
    digits: Annotated[
        str, typer.Option("--digits", help="Keys the caller presses; ',' is a pause.")
    ] = "",
    caller: Annotated[str, typer.Option("--caller", help="CallingNumber.")] = "09012341234",
    called: Annotated[str, typer.Option("--called", help="CalledNumber.")] = "05068680000",
    offline: Annotated[
        bool,
        typer.Option("--offline", help="No HTTP: every URL fails as if its server were down."),
    ] = False,
    completed_url: Annotated[
        str | None,
        typer.Option("--completed-url", help="POST CallStatus=completed there at the end."),
    ] = None,
    client: Annotated[
        str | None,
        typer.Option(
            "--client",
            envvar="RINGBACK_CLIENT",
            help="Client whose storage Play reads and whose queue AddJob writes to (opens the "
            "database). Without it, Play and AddJob fail the call.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run an IVR document on a simulated call and print the transcript (exit 1 on error)."""
    from ringback.cli import ivr_work

    ivr_work.run(file, var, digits, caller, called, offline, completed_url, client, as_json)
