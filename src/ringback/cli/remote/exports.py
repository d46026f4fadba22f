"""``ringback remote task export``, ``ringback remote history export`` (also ``remote calls
export``) and ``ringback remote audit``: CSV exports streamed to stdout or a file, with
progress on stderr; the audit log a page at a time."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from ringback.cli.output import err
from ringback.cli.remote.http import RemoteError
from ringback.cli.remote.shell import JsonOpt, find_queue, remote, reporting, show, table
from ringback.clock import Clock, SystemClock

calls_app = typer.Typer(help="Calls: export the call history as CSV.", no_args_is_help=True)
audit_app = typer.Typer(
    help="The audit log: who changed which queue, task, number, webhook or list entry.",
    invoke_without_command=True,
)
OutOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No progress on stderr.")]
#: progress is shown once an export has run this long, then this often
PROGRESS_AFTER_S = 1.0


class _Progress:
    """Bytes written so far, on stderr, at most once a second (long exports only)."""

    def __init__(self, quiet: bool, clock: Clock | None = None) -> None:
        self.quiet = quiet
        self.clock = clock or SystemClock()
        self.started = self._seconds()
        self.shown = self.started
        self.used = False

    def __call__(self, written: int) -> None:
        now = self._seconds()
        if self.quiet or now - self.shown < PROGRESS_AFTER_S:
            return
        self.shown, self.used = now, True
        rate = written / max(now - self.started, 1e-6)
        sys.stderr.write(f"\rexported {written / 1e6:.1f} MB ({rate / 1e6:.1f} MB/s)   ")
        sys.stderr.flush()

    def _seconds(self) -> float:
        return self.clock.now().timestamp()

    def done(self, written: int, where: str) -> None:
        if self.quiet:
            return
        if self.used:
            sys.stderr.write("\n")
        err.print(f"exported {written:,} bytes to {where}")


def _export(path: str, params: dict[str, Any], output: Path | None, quiet: bool) -> None:
    client = remote()
    progress = _Progress(quiet)
    sink: BinaryIO
    if output is None:
        sink = sys.stdout.buffer
        written = client.download(path, params, sink, progress)
        sink.flush()
        progress.done(written, "stdout")
        return
    partial = output.with_name(output.name + ".part")
    try:
        with partial.open("wb") as sink:
            written = client.download(path, params, sink, progress)
        partial.replace(output)
    except OSError as exc:
        raise RemoteError(f"cannot write {output}: {exc}", exit_code=2) from None
    finally:
        partial.unlink(missing_ok=True)
    progress.done(written, str(output))


def export_tasks(
    queue: Annotated[str, typer.Option("--queue", "-q", help="Queue name (or id).")],
    status: Annotated[str | None, typer.Option("--status", help="e.g. finished.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Tasks of this name.")] = None,
    created_from: Annotated[str | None, typer.Option("--created-from", help="ISO time.")] = None,
    created_to: Annotated[str | None, typer.Option("--created-to", help="ISO time.")] = None,
    finished_from: Annotated[str | None, typer.Option("--finished-from", help="ISO time.")] = None,
    finished_to: Annotated[str | None, typer.Option("--finished-to", help="ISO time.")] = None,
    output: OutOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Export a queue's tasks as CSV (the list's filters; any number of tasks)."""
    with reporting(False):
        q = find_queue(remote(), queue)
        params = {
            "status": status, "name": name, "created_from": created_from,
            "created_to": created_to, "finished_from": finished_from, "finished_to": finished_to,
        }  # fmt: skip
        _export(f"/task_scheduler/{q['id']}/tasks/export.csv", params, output, quiet)


def export_calls(
    start: Annotated[str | None, typer.Option("--start", help="ISO time (UTC).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="ISO time (UTC).")] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="e.g. answered, busy, no_answer.")
    ] = None,
    output: OutOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Export calls as CSV, one row per call, oldest first (any number of calls)."""
    with reporting(False):
        params = {"start": start, "end": end, "outcome": outcome}
        _export("/call_history/export.csv", params, output, quiet)


calls_app.command("export")(export_calls)

AUDIT_COLUMNS = [
    ("id", "id"),
    ("when (UTC)", "occurred_at"),
    ("channel", "channel"),
    ("credential", "credential_id"),
    ("operator", "operator"),
    ("action", "action"),
    ("object", "object_type"),
    ("object id", "object_id"),
    ("summary", "summary_text"),
]


@audit_app.callback()
def list_audit(
    ctx: typer.Context,
    object_type: Annotated[
        str | None, typer.Option("--type", help="queue, task, number, webhook, suppression.")
    ] = None,
    object_id: Annotated[str | None, typer.Option("--id", help="The object's id.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="created, changed, cancelled, deleted.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO time.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO time.")] = None,
    before_id: Annotated[
        int | None, typer.Option("--before-id", min=1, help="Older than this entry (paging).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The audit log, newest first: who created, changed, cancelled or deleted what."""
    if ctx.invoked_subcommand is not None:
        return
    with reporting(as_json):
        params = {
            "object_type": object_type, "object_id": object_id, "action": action,
            "since": since, "until": until, "before_id": before_id, "limit": limit,
        }  # fmt: skip
        page = remote().call("GET", "/audit/", params=params)
        rows = [
            {**e, "summary_text": ", ".join(f"{k}={v}" for k, v in e["summary"].items())}
            for e in page["entries"]
        ]

        def human() -> None:
            table(rows, AUDIT_COLUMNS, wrap=("summary",))
            if page.get("next_before_id"):
                err.print(f"older entries: --before-id {page['next_before_id']}")

        show(page, as_json, human)
