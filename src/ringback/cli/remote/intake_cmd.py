"""``ringback remote task import FILE|- --queue NAME``: a campaign into a queue (see
:mod:`ringback.cli.remote.intake` for the formats and the CSV columns)."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.markup import escape

from ringback.cli.output import err, out
from ringback.cli.remote.http import RemoteClient, RemoteError
from ringback.cli.remote.intake import (
    FORMATS,
    IntakeError,
    Row,
    Sender,
    Summary,
    guess_format,
    open_text,
    read_csv,
    read_json,
    read_jsonl,
    send_all,
    write_errors,
)
from ringback.cli.remote.shell import JsonOpt, emit_json, find_queue, refuse, remote, reporting

DEFAULT_BATCH = 2000
DEFAULT_PARALLEL = 3
SERVER_CAP_FALLBACK = 10_000  # a server whose OpenAPI does not state its cap
SHOWN_REFUSED = 20  # rows listed in the summary; the errors file has them all


def server_cap(client: RemoteClient) -> int:
    """Tasks per request the server takes (its OpenAPI's ``TaskBatchIn.tasks.maxItems``)."""
    schemas = (client.openapi().get("components") or {}).get("schemas") or {}
    tasks = ((schemas.get("TaskBatchIn") or {}).get("properties") or {}).get("tasks") or {}
    cap = tasks.get("maxItems")
    return cap if isinstance(cap, int) and cap > 0 else SERVER_CAP_FALLBACK


@contextmanager
def _input(source: str) -> Iterator[tuple[str, IO[str]]]:
    if source == "-":
        stdin: Any = sys.stdin.buffer
        if not hasattr(stdin, "peek"):  # the format is guessed from its first bytes
            stdin = io.BufferedReader(stdin)
        yield "-", open_text(stdin)
        return
    try:
        data = Path(source).open("rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise refuse(f"cannot read {source}: {exc.strerror or exc}") from None
    with data:
        yield source, open_text(data)


def _rows(name: str, fmt: str | None, stream: IO[str]) -> tuple[str, list[str] | None, Any]:
    if fmt is None:
        first = ""
        if name == "-" or not name.lower().endswith((".csv", ".jsonl", ".ndjson", ".json")):
            buffer = getattr(stream, "buffer", None)
            peeked = buffer.peek(64)[:64] if buffer is not None and hasattr(buffer, "peek") else b""
            first = peeked.decode("utf-8", "replace").lstrip("\ufeff")
        fmt = guess_format(name, first)
    if fmt == "csv":
        header, rows = read_csv(stream)
        return fmt, header, rows
    return fmt, None, read_jsonl(stream) if fmt == "jsonl" else read_json(stream)


@contextmanager
def _progress(shown: bool) -> Iterator[Any]:
    if not shown:
        yield lambda n: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.completed:,.0f} rows sent"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("import", total=None)
        yield lambda n: bar.advance(task, n)


def _say_summary(summary: Summary, seconds: float, errors_file: Path | None) -> None:
    rate = summary.rows / seconds if seconds > 0 else 0.0
    out.print(
        f"added {summary.added:,} task(s), refused {len(summary.refused):,} row(s) of "
        f"{summary.rows:,} in {seconds:.1f} s ({rate:,.0f} rows/s)"
    )
    for row, why in summary.refused[:SHOWN_REFUSED]:
        out.print(f"  {escape(row.where)}: {escape(why)}")
    more = len(summary.refused) - SHOWN_REFUSED
    if more > 0:
        hint = f" (all in {errors_file})" if errors_file else " (see --errors FILE)"
        out.print(f"  … and {more:,} more{hint}")
    if errors_file is not None and summary.refused:
        out.print(f"refused rows written to {errors_file}: fix them and import that file")


def import_tasks(
    source: Annotated[
        str, typer.Argument(metavar="FILE|-", help="The campaign file, or - for stdin.")
    ],
    queue: Annotated[str, typer.Option("--queue", "-q", help="Queue name (or id).")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="csv, jsonl or json (default: by the file's extension or first character).",
        ),
    ] = None,
    errors_file: Annotated[
        Path | None,
        typer.Option(
            "--errors", help="Write the refused rows here (same format, reason in _error)."
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, help="Tasks per request (at most the server's cap)."),
    ] = DEFAULT_BATCH,
    parallel: Annotated[
        int, typer.Option("--parallel", min=1, max=16, help="Requests in flight.")
    ] = DEFAULT_PARALLEL,
    as_json: JsonOpt = False,
) -> None:
    """Import callback tasks from CSV, JSONL or JSON into a queue, in idempotent batches.

    CSV columns: name, a_number, b_number, try_count, try_again_pause, try_count_caller,
    try_again_pause_caller, extension_id, url_before, url_before_again, url_success, url_after,
    start_time_utc, timezone, caller_id_name, caller_id_number, dst_dtmf, extended_a_numbers,
    attempts_src_ani_numbers, attempts_dst_ani_numbers (lists: numbers separated by ';'),
    var.NAME (call data), _NAME (ignored). Any other column refuses the file. Exit 1 when a
    row is refused; running the same file again adds nothing twice.
    """
    if fmt is not None and fmt not in FORMATS:
        with reporting(as_json):
            raise refuse(f"--format {fmt!r}: give one of {', '.join(FORMATS)}")
    with reporting(as_json):
        client = remote()
        cap = server_cap(client)
        if batch_size > cap:
            raise refuse(
                f"--batch-size {batch_size}: this server takes at most {cap:,} tasks per request",
                error="over_cap",
            )
        target = find_queue(client, queue)
        started = time.perf_counter()
        with _input(source) as (name, stream):
            try:
                fmt_used, header, rows = _rows(name, fmt, stream)
                bar = not as_json and err.is_terminal
                with _progress(bar) as advance:
                    summary = send_all(
                        Sender(client, target["id"], target["name"]),
                        rows,
                        batch_size=batch_size,
                        parallel=parallel,
                        progress=advance,
                    )
            except UnicodeDecodeError as exc:
                raise IntakeError(f"{name}: not UTF-8 text ({exc.reason})") from None
        seconds = time.perf_counter() - started
        if errors_file is not None:
            try:
                with errors_file.open("w", encoding="utf-8", newline="") as target_file:
                    write_errors(target_file, fmt_used, header, summary.refused)
            except OSError as exc:
                raise refuse(f"cannot write {errors_file}: {exc.strerror or exc}") from None
        if as_json:
            emit_json(
                {
                    **summary.as_json(),
                    "queue": target["name"],
                    "seconds": round(seconds, 3),
                    "rows_per_second": round(summary.rows / seconds) if seconds else None,
                    "errors_file": str(errors_file) if errors_file else None,
                }
            )
        else:
            _say_summary(summary, seconds, errors_file)
        if summary.failed is not None:
            failed = summary.failed
            raise RemoteError(
                f"the import stopped: {failed.message} (run the same command again: batches "
                "already added are not added twice)",
                error=failed.error,
                details=failed.details,
                exit_code=failed.exit_code,
                status=failed.status,
            )
        if summary.refused:
            raise typer.Exit(1)


__all__ = ["Row", "import_tasks"]
