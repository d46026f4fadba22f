"""Campaign intake: callback tasks read from CSV, JSONL or JSON (a file or stdin), streamed,
sent to a queue in batches, a few at a time, each batch with its own idempotency key.

CSV: a header row; each column is a task field (:data:`TEXT_FIELDS`, :data:`INT_FIELDS`,
:data:`FLOAT_FIELDS`), a field of ``callback_params`` (:data:`PARAM_FIELDS`), a list of
numbers separated by ``;`` (:data:`LIST_FIELDS`), ``var.NAME`` (into ``variables``), or
``_ANYTHING`` (ignored: notes, and the ``_error`` column of an errors file). Any other column
refuses the whole file, by name, before anything is sent. An empty cell leaves its field out.

JSONL: one task object a line (the API's task JSON); JSON: a list of them or
``{"tasks": [...]}``. Keys starting with ``_`` are ignored here too.

A batch the server refuses because of some of its rows (422 naming ``tasks[i]``) is sent
again without them; those rows are reported (line and reason) and can be written to an errors
file in the input's format, with the reason in ``_error``, to be fixed and imported again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from ringback.cli.remote.http import RemoteClient, RemoteError
from ringback.domain.digits import ascii_digits

TEXT_FIELDS = (
    "name",
    "a_number",
    "b_number",
    "url_before",
    "url_before_again",
    "url_success",
    "url_after",
    "start_time_utc",
    "timezone",
)
INT_FIELDS = ("extension_id", "try_count", "try_count_caller")
FLOAT_FIELDS = ("try_again_pause", "try_again_pause_caller")
PARAM_FIELDS = ("caller_id_name", "caller_id_number", "dst_dtmf")
PARAM_LIST_FIELDS = ("extended_a_numbers",)
LIST_FIELDS = ("attempts_src_ani_numbers", "attempts_dst_ani_numbers")
VARIABLE_PREFIXES = ("var.", "variables.")
KNOWN = (*TEXT_FIELDS, *INT_FIELDS, *FLOAT_FIELDS, *PARAM_FIELDS, *PARAM_LIST_FIELDS, *LIST_FIELDS)
ERROR_COLUMN = "_error"
FORMATS = ("csv", "jsonl", "json")


class IntakeError(RemoteError):
    """The input cannot be imported at all (exit 1)."""


@dataclass(slots=True)
class Row:
    where: str  # "line 5" (CSV, JSONL) or "item 3" (JSON)
    raw: Any  # the row as read: CSV cells, a JSONL line's object, a JSON item
    task: dict[str, Any] | None
    problem: str | None = None


# --- reading ----------------------------------------------------------------------------------


def _csv_columns(header: list[str]) -> list[str]:
    names = [name.strip() for name in header]
    unknown = [
        n for n in names if n and n not in KNOWN and not n.startswith(("_", *VARIABLE_PREFIXES))
    ]
    if unknown:
        raise IntakeError(
            f"CSV column(s) {', '.join(map(repr, unknown))} are not task fields; the columns "
            f"are: {', '.join(KNOWN)}, var.NAME (call data), _NAME (ignored)",
            error="unknown_columns",
        )
    missing = [n for n in ("a_number", "b_number") if n not in names]
    if missing:
        raise IntakeError(
            f"the CSV header lacks the column(s) {', '.join(missing)}", error="missing_columns"
        )
    return names


def _numbers(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


def csv_task(columns: list[str], cells: list[str]) -> dict[str, Any]:
    """A task from a CSV row (ValueError naming the column when a value is wrong)."""
    if len(cells) > len(columns):
        raise ValueError(f"{len(cells)} cells for {len(columns)} columns")
    task: dict[str, Any] = {}
    for name, value in zip(columns, cells, strict=False):
        value = value.strip()
        if not value or name.startswith("_"):
            continue
        if name in TEXT_FIELDS:
            task[name] = value
        elif name in INT_FIELDS:
            if not ascii_digits(value.lstrip("-")):
                raise ValueError(f"{name}: {value!r} is not a whole number")
            task[name] = int(value)
        elif name in FLOAT_FIELDS:
            try:
                task[name] = float(value)
            except ValueError:
                raise ValueError(f"{name}: {value!r} is not a number") from None
        elif name in PARAM_FIELDS:
            task.setdefault("callback_params", {})[name] = value
        elif name in PARAM_LIST_FIELDS:
            task.setdefault("callback_params", {})[name] = _numbers(value)
        elif name in LIST_FIELDS:
            task[name] = _numbers(value)
        else:
            variable = name.split(".", 1)[1]
            task.setdefault("variables", {})[variable] = value
    return task


def read_csv(stream: IO[str]) -> tuple[list[str], Iterator[Row]]:
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise IntakeError("the CSV is empty (no header row)", error="empty") from None
    except csv.Error as exc:
        raise IntakeError(f"line 1: not CSV: {exc}", error="bad_csv") from None
    columns = _csv_columns(header)

    def rows() -> Iterator[Row]:
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Row(f"line {reader.line_num}", [], None, f"not CSV: {exc}")
                continue
            if not any(cell.strip() for cell in cells):
                continue
            where = f"line {reader.line_num}"
            try:
                yield Row(where, cells, csv_task(columns, cells))
            except ValueError as exc:
                yield Row(where, cells, None, str(exc))

    return header, rows()


def _json_task(where: str, item: Any) -> Row:
    if not isinstance(item, dict):
        return Row(where, item, None, "not a JSON object")
    return Row(where, item, {k: v for k, v in item.items() if not str(k).startswith("_")})


def read_jsonl(stream: IO[str]) -> Iterator[Row]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield Row(f"line {number}", line.rstrip("\n"), None, f"not JSON: {exc}")
            continue
        yield _json_task(f"line {number}", item)


def read_json(stream: IO[str]) -> Iterator[Row]:
    try:
        loaded = json.load(stream)
    except ValueError as exc:
        raise IntakeError(f"not JSON: {exc}", error="bad_json") from None
    items = loaded.get("tasks") if isinstance(loaded, dict) else loaded
    if not isinstance(items, list):
        raise IntakeError('JSON: expected a list of tasks or {"tasks": [...]}', error="bad_json")
    for number, item in enumerate(items, start=1):
        yield _json_task(f"item {number}", item)


def guess_format(name: str, first: str) -> str:
    """The format by the file's extension, else by its first character (stdin)."""
    lowered = name.lower()
    for suffix, fmt in (
        (".csv", "csv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "json"),
    ):
        if lowered.endswith(suffix):
            return fmt
    return {"[": "json", "{": "jsonl"}.get(first.lstrip()[:1], "csv")


# --- sending ----------------------------------------------------------------------------------


@dataclass
class Summary:
    rows: int = 0
    added: int = 0
    refused: list[tuple[Row, str]] = field(default_factory=list)
    failed: RemoteError | None = None  # the import stopped: the server failed or went away

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "rows": self.rows,
            "added": self.added,
            "refused": [{"where": row.where, "reason": why} for row, why in self.refused],
        }
        if self.failed is not None:
            shown["stopped"] = self.failed.as_json()
        return shown


def _row_problems(details: list[dict[str, Any]], size: int) -> dict[int, str]:
    """Which tasks of a batch the server refused, and why (from ``loc``: ``tasks``, index)."""
    problems: dict[int, str] = {}
    for detail in details:
        loc = [str(part) for part in detail.get("loc") or []]
        if "tasks" not in loc:
            continue
        rest = loc[loc.index("tasks") + 1 :]
        if not rest or not ascii_digits(rest[0].lstrip("-")) or not 0 <= int(rest[0]) < size:
            continue
        where = ".".join(rest[1:])
        why = str(detail.get("msg", "refused"))
        reason = f"{where}: {why}" if where else why
        index = int(rest[0])
        problems[index] = f"{problems[index]}; {reason}" if index in problems else reason
    return problems


class Sender:
    """Sends batches of rows to a queue's ``tasks/`` route."""

    def __init__(self, client: RemoteClient, queue_id: int, queue_name: str) -> None:
        self.client = client
        self.path = f"/task_scheduler/{queue_id}/tasks/"
        self.queue_name = queue_name

    def _post(self, tasks: list[dict[str, Any]]) -> int:
        body = orjson.dumps({"tasks": tasks})
        digest = hashlib.sha256(self.queue_name.encode() + b"\0" + body).hexdigest()[:40]
        answer = self.client.request(
            "POST",
            self.path,
            content=body,
            headers={"Content-Type": "application/json", "Idempotency-Key": f"import-{digest}"},
        )
        added: list[Any] = orjson.loads(answer.content)["tasks"]
        return len(added)

    def send(self, batch: list[Row]) -> tuple[int, list[tuple[Row, str]]]:
        """(tasks added, rows refused with their reasons)."""
        refused = [(row, row.problem or "refused") for row in batch if row.task is None]
        good = [row for row in batch if row.task is not None]
        while good:
            try:
                return self._post([row.task for row in good if row.task is not None]), refused
            except RemoteError as exc:
                problems = _row_problems(exc.details, len(good)) if exc.status in (400, 422) else {}
                if not problems:
                    raise
                refused += [(good[i], why) for i, why in sorted(problems.items())]
                good = [row for i, row in enumerate(good) if i not in problems]
        return 0, refused


def batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def send_all(
    sender: Sender,
    rows: Iterable[Row],
    *,
    batch_size: int,
    parallel: int,
    progress: Callable[[int], None] = lambda n: None,
) -> Summary:
    """Every row sent, ``parallel`` batches at a time; stops at the first batch that fails for
    another reason than its rows (the summary says so: run again, done batches are replayed)."""
    summary = Summary()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        running: dict[Future[tuple[int, list[tuple[Row, str]]]], int] = {}

        def collect(done: Iterable[Future[tuple[int, list[tuple[Row, str]]]]]) -> None:
            for future in done:
                size = running.pop(future)
                try:
                    added, refused = future.result()
                except RemoteError as exc:
                    summary.failed = summary.failed or exc
                    continue
                summary.added += added
                summary.refused += refused
                progress(size)

        for batch in batches(rows, batch_size):
            summary.rows += len(batch)
            running[pool.submit(sender.send, batch)] = len(batch)
            if len(running) >= parallel:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                collect(done)
            if summary.failed is not None:
                break
        collect(wait(running).done)
    summary.refused.sort(key=lambda item: int(item[0].where.split()[-1]))
    return summary


# --- the errors file --------------------------------------------------------------------------


def write_errors(
    target: IO[str], fmt: str, header: list[str] | None, refused: list[tuple[Row, str]]
) -> None:
    """The refused rows in the input's format, each with its reason in ``_error``."""
    if fmt == "csv":
        columns = list(header or [])
        if ERROR_COLUMN not in columns:
            columns.append(ERROR_COLUMN)
        at = columns.index(ERROR_COLUMN)
        writer = csv.writer(target)
        writer.writerow(columns)
        for row, why in refused:
            cells = list(row.raw) + [""] * (len(columns) - len(row.raw))
            cells[at] = f"{row.where}: {why}"
            writer.writerow(cells)
        return
    items = []
    for row, why in refused:
        item = dict(row.raw) if isinstance(row.raw, dict) else {"_raw": row.raw}
        items.append({**item, ERROR_COLUMN: f"{row.where}: {why}"})
    if fmt == "jsonl":
        target.writelines(json.dumps(item, ensure_ascii=False) + "\n" for item in items)
    else:
        json.dump(items, target, ensure_ascii=False, indent=1)
        target.write("\n")


def open_text(data: IO[bytes]) -> IO[str]:
    return io.TextIOWrapper(data, encoding="utf-8-sig", newline="")
