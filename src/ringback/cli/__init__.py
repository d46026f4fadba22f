"""The ``ringback`` command: serve, worker, migrate, queue, task, client, ivr, status."""

from __future__ import annotations

import typer

from ringback.cli.clients import client_app
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
app.add_typer(queue_app, name="queue")
app.add_typer(task_app, name="task")
app.add_typer(client_app, name="client")
app.add_typer(ivr_app, name="ivr")
app.command()(serve)
app.command()(worker)
app.command()(migrate)
app.command()(status)


def main() -> None:
    app()
