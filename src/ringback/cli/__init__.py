"""The ``ringback`` command: serve, worker, migrate, queue, task, client, ivr, dnc, status."""

from __future__ import annotations

from typing import Annotated

import typer

from ringback import __version__
from ringback.cli.clients import client_app
from ringback.cli.common import debug
from ringback.cli.dnc import dnc_app
from ringback.cli.ivr import ivr_app
from ringback.cli.queues import queue_app
from ringback.cli.serve import migrate, serve, worker
from ringback.cli.status import status
from ringback.cli.tasks import task_app

app = typer.Typer(
    name="ringback",
    help="Outbound-call scheduler: durable call tasks, retries, calling hours, call history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"ringback {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    show_debug: Annotated[
        bool,
        typer.Option("--debug", help="On an error, print its traceback too (for a bug report)."),
    ] = False,
) -> None:
    """Outbound-call scheduler: durable call tasks, retries, calling hours, call history."""
    debug.on = show_debug


app.add_typer(queue_app, name="queue")
app.add_typer(task_app, name="task")
app.add_typer(client_app, name="client")
app.add_typer(ivr_app, name="ivr")
app.add_typer(dnc_app, name="dnc")
app.command()(serve)
app.command()(worker)
app.command()(migrate)
app.command()(status)


def main() -> None:
    app()
