"""``ringback remote job|history|number|storage …``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from ringback.cli.output import out
from ringback.cli.remote.shell import JsonOpt, record, refuse, remote, reporting, show, table

job_app = typer.Typer(help="Jobs (msg_call, ivr_call): add, list, show.", no_args_is_help=True)
history_app = typer.Typer(help="Call history: list, show.", no_args_is_help=True)
number_app = typer.Typer(help="Inbound numbers: list, put, delete, simulate.", no_args_is_help=True)
storage_app = typer.Typer(help="The client's files: ls, put, get, rm.", no_args_is_help=True)

JOB_COLUMNS = [
    ("id", "id"),
    ("queue", "scheduler_id"),
    ("kind", "kind"),
    ("name", "name"),
    ("state", "state"),
    ("result", "finish_result"),
    ("comment", "finish_comment"),
    ("attempts", "attemptsMade"),
    ("created (UTC)", "create_date_utc"),
]


# --- jobs -------------------------------------------------------------------------------------


@job_app.command("add")
def add_job(
    to: Annotated[str | None, typer.Option("--to", help="Called number.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Calling number.")] = None,
    audio_file: Annotated[
        str | None, typer.Option("--audio-file", help="msg_call: a stored file.")
    ] = None,
    ivr_url: Annotated[
        str | None, typer.Option("--ivr-url", help="ivr_call: the IVR's URL.")
    ] = None,
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Else 'default'.")] = None,
    attempts: Annotated[int | None, typer.Option("--attempts", min=1)] = None,
    file: Annotated[Path | None, typer.Option("--file", help="One AddJob JSON object.")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a job: a message (--audio-file), an IVR (--ivr-url), or an AddJob JSON --file."""
    with reporting(as_json):
        if file is not None:
            try:
                job: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise refuse(f"--file {file}: {exc}") from None
        else:
            if not (to and from_) or (audio_file is None) == (ivr_url is None):
                raise refuse("give --to, --from and one of --audio-file, --ivr-url (or --file)")
            data: dict[str, Any] = {"calling_number": from_, "called_number": to}
            if audio_file is not None:
                job = {"type": "msg_call", "data": {**data, "audio_file": audio_file}}
            else:
                job = {
                    "type": "ivr_call",
                    "data": {**data, "ivr_xml": {"type": "url", "data": ivr_url}},
                }
        if queue is not None:
            job["queue"] = queue
        if attempts is not None:
            job.setdefault("options", {})["attempts"] = attempts
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        added = remote().call("POST", "/jobs/", json=job, headers=headers)
        show(added, as_json, lambda: print(f"added job {added['id']} ({added['kind']})"))


@job_app.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option("--status")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List jobs, newest first."""
    with reporting(as_json):
        page = remote().call(
            "GET", "/jobs/", params={"status": status, "limit": limit, "offset": offset}
        )
        show(page, as_json, lambda: table(page["jobs"], JOB_COLUMNS, wrap=("comment",)))


@job_app.command("show")
def show_job(job_id: Annotated[int, typer.Argument()], as_json: JsonOpt = False) -> None:
    """One job with its calls."""
    with reporting(as_json):
        job = remote().call("GET", f"/jobs/{job_id}")
        show(job, as_json, lambda: record(job))


# --- call history -----------------------------------------------------------------------------

HISTORY_COLUMNS = [
    ("call", "call_uuid"),
    ("flow", "flow"),
    ("from", "from_username"),
    ("to", "to_username"),
    ("start (UTC)", "start_time_gmt"),
    ("duration", "duration"),
    ("result", "result"),
    ("hangup", "hangup_cause"),
    ("task", "task_id"),
]


@history_app.command("list")
def list_calls(
    start: Annotated[str | None, typer.Option("--start", help="ISO time (UTC).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="ISO time (UTC).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Calls, newest first (one record per call, its legs inside)."""
    with reporting(as_json):
        page = remote().call(
            "GET",
            "/call_history/",
            params={"start": start, "end": end, "limit": limit, "offset": offset},
        )
        show(page, as_json, lambda: table(page["calls"], HISTORY_COLUMNS))


@history_app.command("show")
def show_call(call_uuid: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """One call's record and its legs."""
    with reporting(as_json):
        call = remote().call("GET", f"/call_history/{quote(call_uuid, safe='')}")

        def human() -> None:
            record({k: v for k, v in call.items() if k != "cdr"})
            legs = call.get("cdr") or []
            if legs:
                keys = [
                    k
                    for k in ("leg", "to", "from", "sip_code", "outcome", "duration")
                    if k in legs[0]
                ]
                table(legs, [(k, k) for k in keys], title="legs")

        show(call, as_json, human)


# --- numbers ----------------------------------------------------------------------------------

NUMBER_COLUMNS = [
    ("number", "number"),
    ("answer URL", "answer_url"),
    ("IVR file", "ivr_file"),
    ("notify", "notify_completed"),
    ("description", "description"),
]


@number_app.command("list")
def list_numbers(as_json: JsonOpt = False) -> None:
    """The client's inbound numbers and where their calls go."""
    with reporting(as_json):
        numbers = remote().call("GET", "/numbers/")["numbers"]
        show(numbers, as_json, lambda: table(numbers, NUMBER_COLUMNS, wrap=("description",)))


@number_app.command("put")
def put_number(
    number: Annotated[str, typer.Argument()],
    answer_url: Annotated[str | None, typer.Option("--answer-url")] = None,
    ivr_file: Annotated[
        str | None, typer.Option("--ivr-file", help="A stored IVR document.")
    ] = None,
    notify_completed: Annotated[bool, typer.Option("--notify-completed")] = False,
    description: Annotated[str, typer.Option("--description")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Route a number's calls to an answer URL or a stored IVR file."""
    body = {
        "answer_url": answer_url,
        "ivr_file": ivr_file,
        "notify_completed": notify_completed,
        "description": description,
    }
    with reporting(as_json):
        put = remote().call("PUT", f"/numbers/{quote(number, safe='')}", json=body)
        show(put, as_json, lambda: print(f"number {put['number']} saved"))


@number_app.command("delete")
def delete_number(number: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Remove a number's route."""
    with reporting(as_json):
        remote().call("DELETE", f"/numbers/{quote(number, safe='')}")
        show({"deleted": number}, as_json, lambda: print(f"number {number} deleted"))


@number_app.command("simulate")
def simulate(
    number: Annotated[str, typer.Argument(help="The called number.")],
    calling: Annotated[str | None, typer.Option("--from", help="The calling number.")] = None,
    digits: Annotated[str | None, typer.Option("--digits", help="DTMF the caller presses.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate an inbound call to a number and print what its IVR did."""
    body: dict[str, Any] = {"called_number": number}
    if calling is not None:
        body["calling_number"] = calling
    if digits is not None:
        body["digits"] = digits
    with reporting(as_json):
        done = remote().call("POST", "/calls/simulate", json=body)

        def human() -> None:
            record({k: v for k, v in done.items() if k != "trace"})
            if done.get("trace"):
                table(
                    done["trace"],
                    [("line", "line"), ("element", "element"), ("detail", "detail")],
                    wrap=("detail",),
                    title="trace",
                )

        show(done, as_json, human)


# --- storage ----------------------------------------------------------------------------------


def _path(remote_path: str) -> str:
    return "/storage/" + quote(remote_path.lstrip("/"), safe="/")


@storage_app.command("ls")
def storage_ls(
    prefix: Annotated[str | None, typer.Argument(help="Only paths starting so.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the client's files."""
    with reporting(as_json):
        listing = remote().call("GET", "/storage/", params={"prefix": prefix})
        show(
            listing,
            as_json,
            lambda: table(
                listing["files"],
                [("path", "path"), ("size", "size"), ("modified (UTC)", "modified_utc")],
            ),
        )


@storage_app.command("put")
def storage_put(
    local: Annotated[Path, typer.Argument(help="The file to upload.")],
    remote_path: Annotated[
        str | None, typer.Argument(help="Its path there (default: its name).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload a file (audio, IVR document) into the client's storage."""
    with reporting(as_json):
        try:
            content = local.read_bytes()
        except OSError as exc:
            raise refuse(f"cannot read {local}: {exc.strerror or exc}") from None
        stored = remote().call("PUT", _path(remote_path or local.name), content=content)
        show(stored, as_json, lambda: print(f"stored {stored['path']} ({stored['size']} bytes)"))


@storage_app.command("get")
def storage_get(
    remote_path: Annotated[str, typer.Argument(help="The path there.")],
    local: Annotated[str | None, typer.Argument(help="Where to write it ('-': stdout).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a file of the client's storage."""
    with reporting(as_json):
        content = remote().request("GET", _path(remote_path)).content
        target = local or Path(remote_path).name
        if target == "-":
            sys.stdout.buffer.write(content)
            return
        try:
            Path(target).write_bytes(content)
        except OSError as exc:
            raise refuse(f"cannot write {target}: {exc.strerror or exc}") from None
        done = {"path": remote_path, "file": target, "size": len(content)}
        show(done, as_json, lambda: out.print(f"wrote {target} ({len(content)} bytes)"))


@storage_app.command("rm")
def storage_rm(remote_path: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Delete a file of the client's storage."""
    with reporting(as_json):
        remote().call("DELETE", _path(remote_path))
        show({"deleted": remote_path}, as_json, lambda: print(f"deleted {remote_path}"))
