"""The ``ringback`` command: serve, worker, migrate, queue, task, client, ivr, status, dnc,
caps, callerid, remote.

The sub-commands are imported when run (:mod:`ringback.cli.lazy`): ``ringback --help`` and the
remote commands do not import the database layer, the engine or the API app."""

from __future__ import annotations

import sys
from typing import Annotated, ClassVar

import typer

from ringback import __version__
from ringback.cli.lazy import Lazy, LazyGroup
from ringback.cli.output import debug, json_errors


class _Commands(LazyGroup):
    lazy: ClassVar[dict[str, Lazy]] = {
        "queue": Lazy("ringback.cli.queues", "queue_app", "Create, switch and list queues."),
        "task": Lazy("ringback.cli.tasks", "task_app", "Add, list and inspect tasks."),
        "client": Lazy("ringback.cli.clients", "client_app", "API clients and their credentials."),
        "dnc": Lazy("ringback.cli.dnc", "dnc_app", "Do-not-call lists: numbers never dialled."),
        "caps": Lazy("ringback.cli.campaign", "caps_app", "Frequency caps per called number."),
        "callerid": Lazy("ringback.cli.campaign", "callerid_app", "Allowed caller ids."),
        "ivr": Lazy(
            "ringback.cli.ivr", "ivr_app", "Check IVR documents and try them on a simulated call."
        ),
        "remote": Lazy(
            "ringback.cli.remote.app", "remote_app",
            "Drive a running ringback over its HTTP API (log in once per server: profiles).",
        ),
        "serve": Lazy(
            "ringback.cli.service_commands", "serve",
            "Run the service: migrations, the HTTP API and workers that dial due tasks.",
        ),
        "worker": Lazy("ringback.cli.service_commands", "worker", "Run workers only, no API."),
        "migrate": Lazy(
            "ringback.cli.service_commands", "migrate", "Apply pending database migrations."
        ),
        "status": Lazy(
            "ringback.cli.status", "status", "Counts by status, calls in flight, the next due task."
        ),
    }  # fmt: skip


app = typer.Typer(
    name="ringback",
    cls=_Commands,
    help="Outbound-call scheduler: durable call tasks, retries, calling hours, call history.",
    no_args_is_help=True,
    add_completion=True,
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
    json_errors.on = False  # a command's own --json sets it as its options are read


#: the command lines of a worker process: ``ringback worker``, and what each child of
#: ``ringback worker --processes N`` runs. They name no option to read, and are run without
#: the command-line parser: typer imports pydantic (~8 MiB) to read any command's options,
#: which a worker does not otherwise load (docs/design-notes.md, "A worker without the
#: intake's models"). Any other form, ``--help`` included, goes through typer.
WORKER_COMMANDS = (("worker",), ("worker", "--processes", "1"))


def main() -> None:
    args = tuple(sys.argv[1:])
    if args in WORKER_COMMANDS:
        from ringback.cli.service_commands import worker

        try:
            worker(processes=1 if len(args) > 1 else None)
        except typer.Exit as exc:  # a refusal, already reported (cli.common.errors)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:  # Ctrl-C before the service handles it: as typer ends
            sys.exit(130)
        return
    app()
