"""``ringback serve``, ``ringback worker`` and ``ringback migrate``: the commands and their
options; the service itself (``serve``: the engine, the API, the dialers) is imported when one
of them runs, so that their help answers at once."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ringback.cli.common import JsonOpt

ProcessesOpt = Annotated[
    int | None,
    typer.Option(
        "--processes",
        min=1,
        max=256,
        help="Processes on this machine, one core each (default: RINGBACK_WORKER_PROCESSES, "
        "else 1); with serve, each also serves the API on the same port.",
    ),
]


HostOpt = Annotated[
    str | None, typer.Option("--host", help="API address (default RINGBACK_HOST, 127.0.0.1).")
]
PortOpt = Annotated[
    int | None,
    typer.Option("--port", min=1, max=65535, help="API port (default RINGBACK_PORT, 8080)."),
]


def serve(processes: ProcessesOpt = None, host: HostOpt = None, port: PortOpt = None) -> None:
    """Run the service: migrations, the HTTP API and workers that dial due tasks (until
    SIGTERM)."""
    if host is not None:
        os.environ["RINGBACK_HOST"] = host
    if port is not None:
        os.environ["RINGBACK_PORT"] = str(port)
    from ringback.cli.serve import serve_now

    serve_now("serve", processes, api=True)


def worker(processes: ProcessesOpt = None) -> None:
    """Run workers only, no API (to add workers beside a ``serve``, here or on other hosts)."""
    from ringback.cli.serve import serve_now

    serve_now("worker", processes, api=False)


def migrate(as_json: JsonOpt = False) -> None:
    """Apply pending database migrations."""
    from ringback.cli.serve import migrate_now

    migrate_now(as_json)
