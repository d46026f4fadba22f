"""What the remote commands share: the chosen profile, the client, errors and output.

Under ``--json`` a command prints its JSON on stdout and an error as one JSON object on stderr
(``{"error": …, "message": …, "details": [...]}``); the exit codes are the same either way
(1: refused, 2: cannot reach the server or set-up).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.markup import escape

from ringback.cli.output import debug, err, make_table, out, print_table
from ringback.cli.remote.http import SETUP_EXIT, RemoteClient, RemoteError
from ringback.cli.remote.profiles import ProfileError, choose
from ringback.domain.digits import ascii_digits

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print JSON on stdout (errors as JSON on stderr).")
]


class _Chosen:
    """The ``--profile`` of ``ringback remote`` (or ``RINGBACK_PROFILE``), and its client."""

    profile: str | None = None
    client: RemoteClient | None = None


chosen = _Chosen()


def remote() -> RemoteClient:
    """The API client of the chosen profile (one per run: its token is reused)."""
    if chosen.client is None or chosen.client.profile.name != (
        chosen.profile or chosen.client.profile.name
    ):
        try:
            profile = choose(chosen.profile)
        except ProfileError as exc:
            raise RemoteError(str(exc), error="no_profile", exit_code=SETUP_EXIT) from None
        chosen.client = RemoteClient(profile)
    return chosen.client


def report(exc: RemoteError, as_json: bool) -> None:
    if debug.on:
        err.print_exception()
    if as_json:
        sys.stderr.write(json.dumps(exc.as_json()) + "\n")
        sys.stderr.flush()
        return
    err.print(f"[red]error:[/red] {escape(exc.message)}")
    for detail in exc.details:
        loc = ".".join(str(part) for part in detail.get("loc") or []) or "(input)"
        err.print(f"  [bold]{escape(loc)}[/bold]: {escape(str(detail.get('msg', '')))}")


@contextmanager
def reporting(as_json: bool) -> Iterator[None]:
    """Report a :class:`RemoteError` (as JSON under ``--json``) and exit with its code."""
    try:
        yield
    except RemoteError as exc:
        report(exc, as_json)
        raise typer.Exit(exc.exit_code) from None


def refuse(message: str, error: str = "invalid_input") -> RemoteError:
    return RemoteError(message, error=error)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def say(line: str) -> None:
    out.print(escape(line))


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return escape(str(value))


def table(
    rows: list[dict[str, Any]],
    columns: list[tuple[str, str]],
    *,
    wrap: tuple[str, ...] = (),
    title: str | None = None,
) -> None:
    """Rows as a table of ``(header, key)`` columns (every row and column kept)."""
    shown = make_table(*(header for header, _ in columns), wrap=wrap, title=title)
    for row in rows:
        shown.add_row(*(cell(row.get(key)) for _, key in columns))
    print_table(shown)


def record(fields: dict[str, Any], keys: list[str] | None = None) -> None:
    """One resource as ``key: value`` lines."""
    for key in keys or list(fields):
        value = fields.get(key)
        if isinstance(value, (list, dict)) and not value:
            continue
        out.print(f"[bold]{escape(key)}[/bold]: {cell(value)}")


def show(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    """``data`` as JSON under ``--json``, else ``human()``."""
    if as_json:
        emit_json(data)
    else:
        human()


def find_queue(client: RemoteClient, name: str) -> dict[str, Any]:
    """The client's queue named ``name`` (or whose id it is)."""
    queues: list[dict[str, Any]] = client.call("GET", "/task_scheduler/")["queues"]
    for queue in queues:
        if queue["name"] == name:
            return queue
    for queue in queues:
        if ascii_digits(name) and queue["id"] == int(name):
            return queue
    known = ", ".join(q["name"] for q in queues[:20]) or "none yet"
    raise RemoteError(
        f"no queue named {name!r} on this server (queues: {known}); create it with "
        f"'ringback remote queue add {name}'",
        error="not_found",
    )
