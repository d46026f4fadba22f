"""Tasks from an uploaded file: JSON (a list, or ``{"tasks": [...]}``, of AddJob objects with
``type`` and scheduler tasks with ``a_number`` / ``b_number``, as ``ringback task add --file``
reads) or CSV (a header row; each row a callback task, or with a ``type`` column a msg_call or
ivr_call job). Checked as a whole by the application layer: a problem anywhere adds nothing,
and every problem is named by its line (CSV) or item (JSON) and field."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from ringback.domain.rows import InvalidInput
from ringback.service import MAX_TASKS_PER_REQUEST, parse_callback_tasks, parse_jobs

#: the CSV columns of a job's ``data`` and ``options`` (others are the task's own fields)
_JOB_DATA = ("calling_number", "called_number", "audio_file")
_JOB_OPTIONS = ("attempts", "delay", "timezone")
#: a CSV ivr_call names its IVR document in the client's storage
_IVR_FILE = "ivr_file"
#: list-valued fields of a callback task, written in a CSV cell separated by spaces
_LISTS = ("attempts_src_ani_numbers", "attempts_dst_ani_numbers")


@dataclass
class Upload:
    """The file's tasks split by shape, each with the name of its place in the file."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    job_places: list[str] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    callback_places: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.jobs) + len(self.callbacks)


def read_upload(filename: str, content: bytes, queue: str) -> Upload:
    """The tasks of an uploaded file, validated; jobs without a ``queue`` go to ``queue``."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refused("the file is not UTF-8 text") from exc
    if not text.strip():
        raise _refused("the file is empty")
    is_json = filename.lower().endswith(".json") or text.lstrip()[:1] in ("[", "{")
    items = _json_items(text) if is_json else _csv_items(text)
    if not 1 <= len(items) <= MAX_TASKS_PER_REQUEST:
        raise _refused(f"send 1 to {MAX_TASKS_PER_REQUEST} tasks at a time, not {len(items)}")
    return _checked(items, queue)


def read_form(fields: dict[str, str], queue: str) -> Upload:
    """The one task of the "add a task" form: its fields are a CSV row's columns (a ``type``
    of callback, or none, makes a callback task), checked as a file's row is."""
    cells = {name: value.strip() for name, value in fields.items() if value.strip()}
    if cells.get("type") == "callback":
        del cells["type"]
    return _checked([("form", _csv_task(cells))], queue)


def _checked(items: list[tuple[str, Any]], queue: str) -> Upload:
    upload = Upload()
    for place, item in items:
        if isinstance(item, dict) and "type" in item:
            upload.jobs.append({"queue": queue, **item})
            upload.job_places.append(place)
        else:
            upload.callbacks.append(item)
            upload.callback_places.append(place)
    problems: list[dict[str, Any]] = []
    for places, items_of, parse in (
        (upload.job_places, upload.jobs, parse_jobs),
        (upload.callback_places, upload.callbacks, parse_callback_tasks),
    ):
        if items_of:
            try:
                parse(items_of)
            except InvalidInput as exc:
                problems.extend(_placed(exc, places))
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in the file; nothing was added", problems)
    return upload


def placed(exc: InvalidInput, places: list[str]) -> InvalidInput:
    """``exc`` with each problem's index replaced by its place in the file."""
    return InvalidInput(exc.message, _placed(exc, places))


def _placed(exc: InvalidInput, places: list[str]) -> list[dict[str, Any]]:
    out = []
    for detail in exc.details:
        loc = list(detail.get("loc", []))
        if loc and isinstance(loc[0], int) and 0 <= loc[0] < len(places):
            loc[0] = places[loc[0]]
        out.append({**detail, "loc": loc})
    return out


def _refused(message: str) -> InvalidInput:
    return InvalidInput(message, [{"loc": ["file"], "msg": message}])


def _json_items(text: str) -> list[tuple[str, Any]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _refused(f"not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if isinstance(document, dict) and isinstance(document.get("tasks"), list):
        document = document["tasks"]
    if not isinstance(document, list):
        raise _refused('expected a list of tasks, or {"tasks": [...]}')
    return [(f"item {index + 1}", item) for index, item in enumerate(document)]


def _csv_items(text: str) -> list[tuple[str, Any]]:
    rows = csv.DictReader(io.StringIO(text, newline=""))
    if not rows.fieldnames:
        raise _refused("the CSV file has no header row")
    items: list[tuple[str, Any]] = []
    try:
        for row in rows:
            cells = {
                str(name).strip(): value.strip()
                for name, value in row.items()
                if name is not None and isinstance(value, str) and value.strip()
            }
            if None in row:
                raise _refused(f"line {rows.line_num}: more cells than the header has columns")
            if cells:
                items.append((f"line {rows.line_num}", _csv_task(cells)))
    except csv.Error as exc:
        raise _refused(f"not valid CSV: {exc}") from exc
    return items


def _csv_task(cells: dict[str, str]) -> dict[str, Any]:
    """One CSV row as the JSON object of its task."""
    kind = cells.pop("type", None)
    if kind is None:
        task: dict[str, Any] = dict(cells)
        for name in _LISTS:
            if name in task:
                task[name] = task[name].split()
        return task
    data: dict[str, Any] = {name: cells.pop(name) for name in _JOB_DATA if name in cells}
    if _IVR_FILE in cells:
        data["ivr_xml"] = {"type": "storage", "data": cells.pop(_IVR_FILE)}
    options = {name: cells.pop(name) for name in _JOB_OPTIONS if name in cells}
    job: dict[str, Any] = {"type": kind, "data": data, "options": options, **cells}
    return job
