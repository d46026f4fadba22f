"""What every ``ringback`` command shares: consoles, errors, the services, lookups, tables,
options."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import structlog
import typer

from ringback.cli import output
from ringback.client_files import Storage, StorageError
from ringback.clock import AlignedClock, SystemClock
from ringback.config import ConfigError, Settings
from ringback.domain.audit import Actor
from ringback.domain.rows import Conflict, InvalidInput, NotFound, QueueRow
from ringback.telephony.sim_rules import SimConfigError

if TYPE_CHECKING:  # imported by run(): a command's --help needs no database layer
    from ringback.service import Services

# the consoles and tables live in ``output`` (light, for the remote commands); the local
# commands use them through here
out, err = output.out, output.err
make_table, print_table, escape = output.make_table, output.print_table, output.escape
PIPE_WIDTH, MIN_WRAPPED_WIDTH = output.PIPE_WIDTH, output.MIN_WRAPPED_WIDTH

log = structlog.get_logger("ringback")

T = TypeVar("T")

ClientOpt = Annotated[
    str, typer.Option("--client", envvar="RINGBACK_CLIENT", help="Client (tenant) name.")
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print JSON instead of a table (errors as JSON on stderr).",
        callback=output.json_mode,
    ),
]


class CliError(Exception):
    """A problem to report in one clear line (plus details) and exit 1."""


class SetupError(CliError):
    """The service cannot start where it is: a port in use, a database it cannot reach, a bad
    setting. One line saying what to do, and exit 2 (:data:`SETUP_EXIT`)."""


#: the exit code of a command refused for its input or for what it asked about
REFUSED_EXIT = 1
#: the exit code when the settings or the machine do not let a command run at all
SETUP_EXIT = 2


debug = output.debug  # ``ringback --debug``: errors print their traceback too


def _say(exc: BaseException, message: str, details: list[dict[str, Any]] | None = None) -> None:
    """The error in one line (and its details under it), or as one JSON object on stderr
    under ``--json``: ``{"error": kind, "message": ..., "details": [{"loc": [...], "msg"}]}``
    (the remote commands' shape)."""
    if debug.on:
        err.print_exception()
    if output.json_errors.on:
        shown: dict[str, object] = {"error": _kind(exc), "message": message}
        if details:
            shown["details"] = [{"loc": d["loc"], "msg": d["msg"]} for d in details]
        sys.stderr.write(json.dumps(shown) + "\n")
        sys.stderr.flush()
        return
    err.print(f"[red]error:[/red] {escape(message)}")
    for detail in details or ():
        err.print(f"  [bold]{escape(detail['where'])}[/bold]: {escape(detail['msg'])}")


def _kind(exc: BaseException) -> str:
    """The ``error`` of a JSON error: what kind of refusal, in snake case."""
    kinds: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] = [
        (InvalidInput, "invalid_input"),
        ((SetupError, ConfigError, SimConfigError), "setup"),
        (NotFound, "not_found"),
        (Conflict, "conflict"),
        (StorageError, "storage"),
    ]
    for types, kind in kinds:
        if isinstance(exc, types):
            return kind
    return "refused"


def seed_time(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else ""


@contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except InvalidInput as exc:
        shown = []
        for detail in exc.details:
            if len(exc.details) == 1 and detail["msg"] in exc.message:
                continue  # already said
            where = detail.get("where") or ".".join(str(part) for part in detail["loc"])
            loc = [str(part) for part in detail.get("loc") or ()] or [where]
            shown.append({"where": where or "(input)", "loc": loc, "msg": str(detail["msg"])})
        _say(exc, exc.message, shown)
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
    from ringback.service import open_services
    from ringback.service.audit import ANY_CLIENT, acting_as

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
                # changes made by this command: the host's CLI, operated by this login
                with acting_as(Actor(ANY_CLIENT, "cli", None, _login())):
                    return await work(services, settings)
            finally:
                await services.close()

        return asyncio.run(main())


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid
        return None


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
