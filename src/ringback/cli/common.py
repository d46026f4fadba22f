"""What every ``ringback`` command shares: consoles, errors, the services, lookups, tables,
options."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, TypeVar
from urllib.parse import urlsplit, urlunsplit

import structlog
import typer
from rich.console import Console, ConsoleDimensions, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Column, Table

from ringback.client_files import Storage, StorageError
from ringback.clock import AlignedClock, SystemClock
from ringback.config import ConfigError, Settings
from ringback.domain.rows import Conflict, InvalidInput, NotFound, QueueRow
from ringback.service import Services, open_services
from ringback.telephony.sim_rules import SimConfigError

log = structlog.get_logger("ringback")

T = TypeVar("T")

PIPE_WIDTH = 160  # into a pipe or a file, tables are not squeezed into 80 columns
MIN_WRAPPED_WIDTH = 10  # a wrapping column narrower than this (or its header) is unreadable


class _Output(Console):
    """Standard output. Lines of text are never wrapped by us (the terminal wraps them), so
    nothing a command prints depends on the width; only tables fit it (:func:`print_table`).

    The width is looked up at each print, not once at import: ``COLUMNS`` when set, else the
    terminal's width, else (a pipe, a file) :data:`PIPE_WIDTH`.
    """

    @property
    def size(self) -> ConsoleDimensions:
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            return ConsoleDimensions(int(columns), super().size.height)
        if self.is_terminal:
            return super().size
        return ConsoleDimensions(PIPE_WIDTH, super().size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        raise AttributeError("the width of ringback's output follows COLUMNS or the terminal")


out = _Output(soft_wrap=True)
# Errors are never wrapped mid-sentence.
err = Console(stderr=True, soft_wrap=True)

ClientOpt = Annotated[
    str, typer.Option("--client", envvar="RINGBACK_CLIENT", help="Client (tenant) name.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class CliError(Exception):
    """A problem to report in one clear line (plus details) and exit 1."""


class SetupError(CliError):
    """The service cannot start where it is: a port in use, a database it cannot reach, a bad
    setting. One line saying what to do, and exit 2 (:data:`SETUP_EXIT`)."""


#: the exit code of a command refused for its input or for what it asked about
REFUSED_EXIT = 1
#: the exit code when the settings or the machine do not let a command run at all
SETUP_EXIT = 2


class _Debug:
    """``ringback --debug``: errors print their traceback before their one line."""

    on = False


debug = _Debug()


def _say(exc: BaseException, message: str) -> None:
    if debug.on:
        err.print_exception()
    err.print(f"[red]error:[/red] {escape(message)}")


def seed_time(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else ""


@contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except InvalidInput as exc:
        _say(exc, exc.message)
        for detail in exc.details:
            if len(exc.details) == 1 and detail["msg"] in exc.message:
                continue  # already said
            where = detail.get("where") or ".".join(str(part) for part in detail["loc"])
            err.print(f"  [bold]{escape(where or '(input)')}[/bold]: {escape(detail['msg'])}")
        raise typer.Exit(REFUSED_EXIT) from None
    except (SetupError, ConfigError, SimConfigError) as exc:
        _say(exc, str(exc))
        raise typer.Exit(SETUP_EXIT) from None
    except (CliError, NotFound, Conflict, StorageError) as exc:
        _say(exc, str(exc))
        raise typer.Exit(REFUSED_EXIT) from None


def run(work: Callable[[Services, Settings], Awaitable[T]], *, storage: bool = False) -> T:
    """Open the database (migrating it) behind the application layer, run ``work``, close.
    ``storage``: the services get the clients' files (RINGBACK_STORAGE_DIR)."""
    with errors():
        settings = Settings.from_env()

        async def main() -> T:
            clock = AlignedClock(SystemClock())  # on the database's time: see AlignedClock
            try:
                files = Storage(settings.storage_dir) if storage else None
                services = await open_services(settings, clock, storage=files)
            except Exception as exc:  # refused, bad URL, unknown database, wrong password, …
                url = shown_url(settings.database_url)
                lines = str(getattr(exc, "orig", None) or exc).splitlines()  # the driver's words
                why = lines[0] if lines else type(exc).__name__
                raise SetupError(
                    f"cannot open the database {url}: {why} (is the server running? check "
                    "RINGBACK_DATABASE_URL)"
                ) from exc
            try:
                return await work(services, settings)
            finally:
                await services.close()

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


async def find_client(services: Services, name: str) -> int | None:
    """The client's id, or None when it has nothing stored yet."""
    try:
        return await services.clients.client_id(name, create=False)
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


async def find_queue(services: Services, client_id: int | None, name: str, client: str) -> QueueRow:
    if client_id is None:
        raise _no_queue(name, client)
    try:
        return await services.queues.find(client_id, name)
    except NotFound:
        raise _no_queue(name, client) from None


def unknown_client(client: str) -> CliError:
    return CliError(f"no client named {client!r} yet: add a queue or a task for it first")


def make_table(*columns: str, wrap: tuple[str, ...] = (), title: str | None = None) -> Table:
    """A table whose cells are kept whole, except in the columns named in ``wrap`` (free text),
    which wrap, and fold words too long for them. Print it with :func:`print_table`."""
    return Table(
        *(
            Column(name, no_wrap=name not in wrap, overflow="fold" if name in wrap else "ellipsis")
            for name in columns
        ),
        title=title,
    )


def print_table(table: Table, console: Console = out) -> None:
    """Print every row, column, header and cell of ``table``, whatever the width.

    A table of :func:`make_table` is printed as it is when it fits the console; else with its
    wrapping columns narrowed (never below their header nor :data:`MIN_WRAPPED_WIDTH`) when
    that is enough; else as one block of ``header: value`` lines per row, whose values wrap.
    Rich left alone would cut cells to ``…`` and drop whole columns instead.
    """
    width = console.width
    wide = console.options.update_width(100_000)
    natural = max(
        (Segment.get_line_length(line) for line in console.render_lines(table, wide, pad=False)),
        default=0,
    )
    if natural <= width:
        console.print(table)
        return

    def widest(*cells: RenderableType) -> int:
        return max(Measurement.get(console, wide, cell).maximum for cell in cells)

    content = [widest(col.header, *col.cells) for col in table.columns]
    borders_and_padding = natural - sum(content)
    floors = [
        size if col.no_wrap else min(size, max(MIN_WRAPPED_WIDTH, widest(col.header)))
        for col, size in zip(table.columns, content, strict=True)
    ]
    spare = width - borders_and_padding - sum(floors)
    if spare < 0:
        _print_records(table, console)
        return
    lacking = sum(size - floor for size, floor in zip(content, floors, strict=True))
    for col, size, floor in zip(table.columns, content, floors, strict=True):
        if not col.no_wrap:  # the room left, shared in proportion to what each one lacks
            col.width = floor + (spare * (size - floor)) // max(1, lacking)
    console.print(table)


def _print_records(table: Table, console: Console) -> None:
    """``table`` as one block of ``header: value`` lines per row (too wide for the console)."""
    if table.title:
        console.print(table.title, style="bold")
    headers = [f"{col.header}:" for col in table.columns]
    rows = list(zip(*(list(col.cells) for col in table.columns), strict=True))
    if not rows:
        console.print(f"no rows ({', '.join(str(col.header) for col in table.columns)})")
    for index, row in enumerate(rows):
        if index:
            console.print()
        record = Table.grid(padding=(0, 1))
        record.add_column(style="bold", overflow="fold")
        record.add_column(overflow="fold")
        for header, cell in zip(headers, row, strict=True):
            record.add_row(header, cell)
        console.print(record)
