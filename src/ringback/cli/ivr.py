"""``ringback ivr check FILE…`` and ``ringback ivr run FILE``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ringback.cli.common import err, out
from ringback.cli.common import run as run_with_store
from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.config import ConfigError, Settings
from ringback.ivr.errors import IvrError
from ringback.ivr.fax_check import FaxDocumentCheck
from ringback.ivr.fetch import FetchConfig, Fetcher, HttpFetcher, OfflineFetcher
from ringback.ivr.interpret import IvrRun, is_url
from ringback.ivr.limits import shorten
from ringback.ivr.parse import MAX_DOCUMENT_BYTES, Document, parse
from ringback.ivr.runner import IvrSource
from ringback.ivr.signing import SigningFetcher
from ringback.ivr.simulate import simulate_call
from ringback.service import Services, TaskService
from ringback.telephony.base import CallRecord
from ringback.telephony.sim_rules import DTMF_KEYS, DTMF_PAUSE

ivr_app = typer.Typer(help="Check IVR documents and try them on a simulated call.")


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise IvrError(f"cannot read the file: {exc.strerror or exc}") from exc
    return data


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
) -> None:
    """Validate IVR documents: exit 0 when all are valid, 1 printing every error."""
    failed = 0
    parsed: list[tuple[Path, Document]] = []
    for path in files:
        try:
            document = parse(_read(path))
        except IvrError as exc:
            failed += 1
            where = f"{path}:{exc.line}" if exc.line else str(path)
            err.print(f"[red]{escape(where)}[/red]: {escape(exc.message)}")
            continue
        parsed.append((path, document))
    fax_problems = _fax_problems(client, parsed) if client is not None else {}
    for path, document in parsed:
        problem = fax_problems.get(path)
        if problem is not None:
            failed += 1
            err.print(f"[red]{escape(str(path))}[/red]: {escape(problem)}")
        elif not quiet:
            count = sum(1 for _ in document.root.walk())
            out.print(f"{escape(str(path))}: ok ({count} elements)")
    if failed:
        err.print(f"{failed} of {len(files)} document(s) invalid")
        raise typer.Exit(1)


def _fax_problems(client: str, documents: list[tuple[Path, Document]]) -> dict[Path, str]:
    """Why each document's SendFax cannot fax its literal document from ``client``'s storage."""

    async def work(services: Services, settings: Settings) -> dict[Path, str]:
        client_id = await services.clients.client_id(client, create=False)
        check = FaxDocumentCheck(Storage(settings.storage_dir), client_id)
        problems = {}
        for path, document in documents:
            problem = await check.problem(document)
            if problem is not None:
                problems[path] = problem
        return problems

    return run_with_store(work)


def _variables(pairs: list[str]) -> dict[str, str]:
    variables = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"expected NAME=VALUE, not {pair!r}", param_hint="--var")
        variables[name.strip()] = value
    return variables


def _print_transcript(
    path: str, caller: str, called: str, digits: str, run: IvrRun, record: CallRecord
) -> None:
    out.print(
        f"Simulated inbound call from {escape(caller)} to {escape(called)} running "
        f"{escape(path)}" + (f", caller presses {escape(repr(digits))}" if digits else "")
    )
    for entry in run.trace:
        where = f"line {entry.line:>3}" if entry.line else "        "
        out.print(f"  {where}  [bold]{escape(entry.element)}[/bold]  {escape(entry.detail)}")
    if record.dtmf_received:
        out.print(f"Keys pressed: {escape(record.dtmf_received)}")
    if run.set_variables:
        # a value may hold up to 64 KiB (ivr/limits.py): the transcript shows its start
        shown = ", ".join(f"{k}={shorten(v, 200)}" for k, v in run.var_parameters().items())
        out.print(f"Variables: {escape(shown)}")
    if run.jobs_added:
        out.print(f"Tasks added: {', '.join(str(task) for task in run.jobs_added)}")
    if run.error is not None:
        err.print(f"[red]error:[/red] {escape(str(run.error))}")
    elif run.call_error is not None:
        err.print(f"[red]call ended:[/red] {escape(run.call_error)}")
    else:
        out.print(f"Call ended ({run.hung_up_by}).")


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
) -> None:
    """Run an IVR document on a simulated call and print the transcript (exit 1 on error)."""
    variables = _variables(var or [])
    caller = variables.get("CallingNumber", caller)
    called = variables.get("CalledNumber", called)
    bad = sorted(set(digits.upper()) - DTMF_KEYS - {DTMF_PAUSE})
    if bad:
        raise typer.BadParameter(
            f"keys {''.join(bad)!r}: use 0-9 * # A-D and ','", param_hint="--digits"
        )
    source: IvrSource | Document
    if is_url(file):
        source = IvrSource("url", file)
    else:
        try:
            source = parse(_read(Path(file)))
        except IvrError as exc:
            where = f"{file}:{exc.line}" if exc.line else str(file)
            err.print(f"[red]{escape(where)}[/red]: {escape(exc.message)}")
            raise typer.Exit(1) from None
    try:
        fetch_config = FetchConfig.from_settings(Settings.from_env())
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None

    async def simulate(
        storage: Storage | None,
        client_id: int | None,
        service: TaskService | None,
        fetcher: Fetcher | None = None,
    ) -> tuple[IvrRun, CallRecord]:
        return await simulate_call(
            source,
            SystemClock(),
            caller=caller,
            called=called,
            digits=digits,
            variables=variables,
            storage=storage,
            client_id=client_id,
            jobs=service,
            fetcher=OfflineFetcher() if offline else fetcher or HttpFetcher(fetch_config),
            completed_url=completed_url,
        )

    if client is None:
        result, record = asyncio.run(simulate(None, None, None))
    else:
        client_name = client

        async def work(services: Services, settings: Settings) -> tuple[IvrRun, CallRecord]:
            client_id = await services.clients.client_id(client_name)

            async def secrets() -> list[str]:  # requests are signed like the worker's
                return await services.clients.signing_secrets(client_id)

            signed = SigningFetcher(fetch_config, secrets)
            storage = Storage(settings.storage_dir)
            return await simulate(storage, client_id, services.tasks, signed)

        result, record = run_with_store(work)
    _print_transcript(file, caller, called, digits, result, record)
    if not result.ok:
        raise typer.Exit(1)
