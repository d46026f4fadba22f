"""What every ``ringback`` command shares: consoles, errors, the store, lookups, tables, options."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, TypeVar
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from ringback.clock import SystemClock
from ringback.config import ConfigError, Settings
from ringback.service import InvalidInput, TaskService
from ringback.storage import StorageError
from ringback.store.db import Store, open_store
from ringback.store.records import Conflict, NotFound, QueueRow
from ringback.telephony.sim import SimConfigError

T = TypeVar("T")

# Tables fit the terminal; into a pipe or a file they are not squeezed into 80 columns.
out = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
# Errors are never wrapped mid-sentence.
err = Console(stderr=True, soft_wrap=True)

ClientOpt = Annotated[
    str, typer.Option("--client", envvar="RINGBACK_CLIENT", help="Client (tenant) name.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class CliError(Exception):
    """A problem to report in one clear line (plus details) and exit 1."""


def seed_time(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else ""


@contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except InvalidInput as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}")
        for detail in exc.details:
            if len(exc.details) == 1 and detail["msg"] in exc.message:
                continue  # already said
            where = detail.get("where") or ".".join(str(part) for part in detail["loc"])
            err.print(f"  [bold]{escape(where or '(input)')}[/bold]: {escape(detail['msg'])}")
        raise typer.Exit(1) from None
    except (CliError, NotFound, Conflict, ConfigError, SimConfigError, StorageError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None


def run(work: Callable[[Store, TaskService, Settings], Awaitable[T]]) -> T:
    """Open the store (migrating it), run ``work``, close."""
    with errors():
        settings = Settings.from_env()

        async def main() -> T:
            clock = SystemClock()
            try:
                store = await open_store(settings.database_url, clock, migrate=True)
            except Exception as exc:  # refused, bad URL, unknown database, wrong password, …
                url = shown_url(settings.database_url)
                lines = str(getattr(exc, "orig", None) or exc).splitlines()  # the driver's words
                why = lines[0] if lines else type(exc).__name__
                raise CliError(f"cannot open the database {url}: {why}") from exc
            try:
                return await work(store, TaskService(store, clock), settings)
            finally:
                await store.close()

        return asyncio.run(main())


def shown_url(url: str) -> str:
    """A database URL fit to print: any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc}"))
    except ValueError:
        return url


async def find_client(service: TaskService, name: str) -> int | None:
    """The client's id, or None when it has nothing stored yet."""
    try:
        return await service.client_id(name, create=False)
    except NotFound:
        return None


def _no_queue(name: str, client: str) -> CliError:
    whose, option = "", ""
    if client != "default":
        whose, option = f" for client {client!r}", f" --client {client}"
    return CliError(
        f"no queue named {name!r}{whose}: create it with 'ringback queue add {name}{option}' "
        f"(see 'ringback queue list{option}')"
    )


async def find_queue(store: Store, client_id: int | None, name: str, client: str) -> QueueRow:
    if client_id is None:
        raise _no_queue(name, client)
    try:
        return await store.find_queue(client_id, name)
    except NotFound:
        raise _no_queue(name, client) from None


def unknown_client(client: str) -> CliError:
    return CliError(f"no client named {client!r} yet: add a queue or a task for it first")


def make_table(*columns: str, wrap: tuple[str, ...] = (), title: str | None = None) -> Table:
    """A table whose columns never wrap, except those named in ``wrap``."""
    return Table(*(Column(name, no_wrap=name not in wrap) for name in columns), title=title)
