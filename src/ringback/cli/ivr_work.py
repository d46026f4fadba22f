"""The work of ``ringback ivr check`` and ``ringback ivr run`` (cli/ivr.py, the commands' face):
imported when one of them runs, so that their help needs neither the IVR nor the database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from ringback.cli.common import CliError, err, errors, escape, out
from ringback.cli.common import run as run_with_store
from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.config import Settings
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


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise IvrError(f"cannot read the file: {exc.strerror or exc}") from exc
    return data


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

    with errors():
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


def _transcript_json(run: IvrRun, record: CallRecord) -> dict[str, Any]:
    """``ivr run --json``: the transcript as data (what the printed transcript shows)."""
    return {
        "ok": run.ok,
        "trace": [
            {"line": entry.line, "element": entry.element, "detail": entry.detail}
            for entry in run.trace
        ],
        "keys_pressed": record.dtmf_received or "",
        "variables": run.var_parameters() if run.set_variables else {},
        "tasks_added": [str(task) for task in run.jobs_added],
        "error": None if run.error is None else str(run.error),
        "call_error": run.call_error,
        "hung_up_by": run.hung_up_by,
    }


def check(files: list[Path], quiet: bool, client: str | None, as_json: bool) -> None:
    """``ringback ivr check``."""
    results: list[dict[str, Any]] = []
    parsed: list[tuple[Path, Document]] = []
    for path in files:
        try:
            document = parse(_read(path))
        except IvrError as exc:
            results.append({"file": str(path), "ok": False, "line": exc.line,
                            "error": exc.message})  # fmt: skip
            continue
        parsed.append((path, document))
        results.append({"file": str(path), "ok": True,
                        "elements": sum(1 for _ in document.root.walk())})  # fmt: skip
    fax_problems = _fax_problems(client, parsed) if client is not None else {}
    for result in results:
        problem = fax_problems.get(Path(result["file"]))
        if problem is not None:
            result.update(ok=False, line=None, error=problem)
            result.pop("elements", None)
    failed = sum(1 for result in results if not result["ok"])
    if as_json:
        out.print_json(data={"documents": results, "invalid": failed})
    else:
        for result in results:
            if not result["ok"]:
                line = result.get("line")
                where = f"{result['file']}:{line}" if line else result["file"]
                err.print(f"[red]{escape(where)}[/red]: {escape(result['error'])}")
            elif not quiet:
                out.print(f"{escape(result['file'])}: ok ({result['elements']} elements)")
        if failed:
            err.print(f"{failed} of {len(files)} document(s) invalid")
    if failed:
        raise typer.Exit(1)


def run(
    file: str,
    var: list[str] | None,
    digits: str,
    caller: str,
    called: str,
    offline: bool,
    completed_url: str | None,
    client: str | None,
    as_json: bool,
) -> None:
    """``ringback ivr run``."""
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
        with errors():
            try:
                source = parse(_read(Path(file)))
            except IvrError as exc:
                where = f"{file}:{exc.line}" if exc.line else str(file)
                raise CliError(f"{where}: {exc.message}") from None
    with errors():
        fetch_config = FetchConfig.from_settings(Settings.from_env())

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
    if as_json:
        out.print_json(data=_transcript_json(result, record))
    else:
        _print_transcript(file, caller, called, digits, result, record)
    if not result.ok:
        raise typer.Exit(1)
