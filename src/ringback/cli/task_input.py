"""The tasks of one ``ringback task add``: read from a JSON file or built from flags, then checked.

Problems are named the way the user wrote the tasks: a line and a path in the file, or a flag.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ringback.cli.common import CliError
from ringback.domain.rows import InvalidInput

_WS = re.compile(r"[ \t\n\r]*")


def _item_lines(text: str, key: str | None) -> list[int]:
    """The line on which each task of a (valid) JSON document starts; [] when unsure.

    ``key`` names the list inside a ``{"tasks": [...]}`` wrapper; None: a list or one object.
    """
    decoder = json.JSONDecoder()
    line, counted = 1, 0

    def skip(pos: int) -> int:
        found = _WS.match(text, pos)
        return found.end() if found else pos

    def line_at(pos: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, pos)
        counted = pos
        return line

    try:
        pos = skip(0)
        if key is not None:
            if text[pos] != "{":
                return []
            pos, found = skip(pos + 1), None
            while text[pos] != "}":
                name, pos = decoder.raw_decode(text, pos)
                pos = skip(skip(pos) + 1)  # past the ':'
                if name == key:
                    found = pos  # the last one wins, as in json.loads
                pos = skip(decoder.raw_decode(text, pos)[1])
                if text[pos] == ",":
                    pos = skip(pos + 1)
            if found is None:
                return []
            pos = found
        if text[pos] != "[":
            return [line_at(pos)]
        pos, lines = skip(pos + 1), []
        while text[pos] != "]":
            lines.append(line_at(pos))
            pos = skip(decoder.raw_decode(text, pos)[1])
            if text[pos] == ",":
                pos = skip(pos + 1)
        return lines
    except (IndexError, ValueError):
        return []


class TaskSource:
    """Where the tasks of one ``task add`` come from, to name their problems well."""

    def __init__(
        self, items: list[Any], *, file: Path | None = None, root: str | None, lines: list[int]
    ) -> None:
        self.items = items
        self.file = file
        self.root = root  # None: one object; "": a list; "tasks": a {"tasks": [...]} wrapper
        self.lines = lines
        self.flags: dict[str, Any] | None = None
        self.kind = ""

    def where(self, index: int, loc: list[Any]) -> str:
        if self.flags is not None:
            return _flag_for(self.kind, loc, self.flags)
        path = ".".join(str(part) for part in loc)
        if self.root is not None:
            path = f"{self.root}[{index}]" + (f".{path}" if path else "")
        line = self.lines[index] if index < len(self.lines) else None
        return f"line {line}, {path or 'the task'}" if line else path or "(input)"

    def problem(self, count: int) -> str:
        if self.flags is not None:
            return f"the task was not added: {count} problem(s)"
        tasks = f"{len(self.items)} task(s)"
        return f"{self.file}: {count} problem(s) in {tasks}; nothing was added"


def _read_json_file(path: Path) -> TaskSource:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise CliError(f"cannot read {path}: {why}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    if isinstance(data, dict):
        for key in ("tasks", "jobs"):
            if isinstance(data.get(key), list):
                items = list(data[key])
                return TaskSource(items, file=path, root=key, lines=_item_lines(text, key))
        return TaskSource([data], file=path, root=None, lines=_item_lines(text, None))
    if isinstance(data, list):
        return TaskSource(data, file=path, root="", lines=_item_lines(text, None))
    raise CliError(f'{path}: expected a JSON object, a list, or {{"tasks": [...]}}')


# --- task flags ---------------------------------------------------------------------------------

_JOB_FLAGS = frozenset(
    {
        "called_number",
        "calling_number",
        "attempts",
        "delay_ms",
        "backoff",
        "backoff_delay_ms",
        "jitter",
        "amd",
    }
)
_IVR_SOURCES = ("ivr_file", "ivr_inline", "ivr_storage")
_KIND_FLAGS: dict[str, frozenset[str]] = {
    "msg_call": _JOB_FLAGS | {"audio_file"},
    "ivr_call": _JOB_FLAGS | frozenset(_IVR_SOURCES),
    "callback": frozenset(
        {
            "a_number",
            "b_number",
            "extended_a",
            "caller_id_number",
            "caller_id_name",
            "name",
            "try_count",
            "try_again_pause",
            "try_count_caller",
            "try_again_pause_caller",
            "start_time",
        }
    ),
}
_ANY_KIND = frozenset({"kind", "timezone", "expires", "priority"})  # flags of every kind of task
_TASK_FLAGS: frozenset[str] = _ANY_KIND.union(*_KIND_FLAGS.values())
_FLAG_NAMES = {
    "called_number": "--to",
    "calling_number": "--from",
    "extended_a": "--extended-a",
    "file": "--file",
}
_INSTEAD = {
    "try_count": "--attempts",
    "try_again_pause": "--backoff fixed --backoff-delay-ms",
    "start_time": "--delay-ms",
    "attempts": "--try-count",
    "delay_ms": "--start-time",
    "backoff": "--try-again-pause",
    "backoff_delay_ms": "--try-again-pause",
    "called_number": "--a-number / --b-number",
    "calling_number": "--caller-id-number",
}
#: a field of the task JSON -> the flag that sets it
_JOB_LOCS: dict[tuple[str, ...], str] = {
    ("data", "calling_number"): "calling_number",
    ("data", "called_number"): "called_number",
    ("data", "audio_file"): "audio_file",
    ("data", "amd"): "amd",
    ("options", "attempts"): "attempts",
    ("options", "delay"): "delay_ms",
    ("options", "timezone"): "timezone",
    ("options", "expires_at"): "expires",
    ("options", "priority"): "priority",
    ("options", "backoff", "type"): "backoff",
    ("options", "backoff", "delay"): "backoff_delay_ms",
    ("options", "backoff", "jitter"): "jitter",
}
_CALLBACK_LOCS: dict[tuple[str, ...], str] = {
    ("start_time_utc",): "start_time",
    ("callback_params", "extended_a_numbers"): "extended_a",
    ("callback_params", "caller_id_number"): "caller_id_number",
    ("callback_params", "caller_id_name"): "caller_id_name",
}


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _flag(name: str) -> str:
    return _FLAG_NAMES.get(name) or "--" + name.replace("_", "-")


def _given(flags: dict[str, Any], names: frozenset[str]) -> list[str]:
    return [name for name in sorted(names) if flags.get(name) not in (None, False, [], "")]


def _flag_for(kind: str, loc: list[Any], flags: dict[str, Any]) -> str:
    path = tuple(str(part) for part in loc)
    if kind == "callback":
        for prefix, name in _CALLBACK_LOCS.items():
            if path[: len(prefix)] == prefix:
                return _flag(name)
        if path and path[0] == "expires_at":
            return "--expires"
        if path and path[0] in _KIND_FLAGS["callback"] | {"timezone"}:
            return _flag(path[0])
        return ".".join(path) or "--a-number/--b-number"
    if path[:2] == ("data", "ivr_xml"):
        sources = _given(flags, frozenset(_IVR_SOURCES))
        return _flag(sources[0]) if sources else "--ivr-file/--ivr-inline/--ivr-storage"
    for prefix, name in _JOB_LOCS.items():
        if path[: len(prefix)] == prefix:
            return _flag(name)
    return ".".join(path) or "the task"


def _task_from_flags(flags: dict[str, Any]) -> TaskSource:
    given = _given(flags, _TASK_FLAGS)
    kind = flags["kind"] or (
        "callback"
        if flags["a_number"] or flags["b_number"]
        else "ivr_call"
        if set(_IVR_SOURCES).intersection(given)
        else "msg_call"
    )
    if kind not in _KIND_FLAGS:
        raise CliError(f"--kind {kind!r}: use msg_call, ivr_call or callback")
    problems = []
    for name in given:
        if name not in _KIND_FLAGS[kind] | _ANY_KIND:
            instead = f" (use {_INSTEAD[name]})" if name in _INSTEAD else ""
            problems.append(
                {
                    "loc": [],
                    "where": _flag(name),
                    "msg": f"does not apply to {_a(kind)} task{instead}",
                }
            )
    if kind == "ivr_call" and len(_given(flags, frozenset(_IVR_SOURCES))) > 1:
        problems.append(
            {
                "loc": [],
                "where": "--ivr-file/--ivr-inline/--ivr-storage",
                "msg": "give one IVR document",
            }
        )
    for name in ("backoff_delay_ms", "jitter"):
        if flags[name] is not None and not flags["backoff"] and kind != "callback":
            problems.append(
                {"loc": [], "where": _flag(name), "msg": "needs --backoff fixed or exponential"}
            )
    if problems:
        raise InvalidInput(f"the task was not added: {len(problems)} problem(s)", problems)
    source = TaskSource([_from_flags(kind, flags)], root=None, lines=[])
    source.flags, source.kind = flags, kind
    return source


def _from_flags(kind: str, flags: dict[str, Any]) -> dict[str, Any]:
    if kind == "callback":
        task: dict[str, Any] = {
            "a_number": flags["a_number"],
            "b_number": flags["b_number"],
            "name": flags["name"],
            "try_count": flags["try_count"],
            "try_again_pause": flags["try_again_pause"],
            "try_count_caller": flags["try_count_caller"],
            "try_again_pause_caller": flags["try_again_pause_caller"],
            "start_time_utc": flags["start_time"],
            "timezone": flags["timezone"],
            "expires_at": flags["expires"],
            "priority": flags["priority"],
            "callback_params": {
                "extended_a_numbers": flags["extended_a"] or [],
                "caller_id_number": flags["caller_id_number"],
                "caller_id_name": flags["caller_id_name"],
            },
        }
        task["callback_params"] = {k: v for k, v in task["callback_params"].items() if v}
        return {k: v for k, v in task.items() if v is not None}
    data: dict[str, Any] = {
        "calling_number": flags["calling_number"],
        "called_number": flags["called_number"],
    }
    if kind == "msg_call":
        data["audio_file"] = flags["audio_file"]
    elif flags["ivr_file"]:
        try:
            data["ivr_xml"] = {"type": "inline", "data": Path(flags["ivr_file"]).read_text()}
        except OSError as exc:
            raise CliError(f"cannot read {flags['ivr_file']}: {exc.strerror}") from exc
    elif flags["ivr_storage"]:
        data["ivr_xml"] = {"type": "storage", "data": flags["ivr_storage"]}
    elif flags["ivr_inline"]:
        data["ivr_xml"] = {"type": "inline", "data": flags["ivr_inline"]}
    if flags.get("amd"):
        data["amd"] = flags["amd"]
    options: dict[str, Any] = {}
    if flags["attempts"] is not None:
        options["attempts"] = flags["attempts"]
    if flags["delay_ms"] is not None:
        options["delay"] = flags["delay_ms"]
    if flags["timezone"]:
        options["timezone"] = flags["timezone"]
    if flags["expires"]:
        options["expires_at"] = flags["expires"]
    if flags["priority"] is not None:
        options["priority"] = flags["priority"]
    if flags["backoff"]:
        options["backoff"] = {
            "type": flags["backoff"],
            "delay": flags["backoff_delay_ms"] or 0,
            "jitter": flags["jitter"] or 0.0,
        }
    job = {"type": kind, "data": {k: v for k, v in data.items() if v is not None}}
    if options:
        job["options"] = options
    return job


def task_source(file: Path | None, flags: dict[str, Any]) -> TaskSource:
    """The tasks to add: those of ``--file``, else the one the other flags describe."""
    if file is not None:
        extra = _given(flags, _TASK_FLAGS)
        if extra:
            raise CliError(
                f"--file takes the tasks from the file; drop {', '.join(map(_flag, extra))} "
                "(only --client, --queue and --json go with --file)"
            )
        return _read_json_file(file)
    return _task_from_flags(flags)


def checked(
    source: TaskSource, queue: str | None
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, dict[str, Any]]]]:
    """Split the tasks into AddJob objects and scheduler tasks and validate them all.

    Every problem of every task is reported at once (InvalidInput); nothing is written.
    """
    if not source.items:
        raise CliError(f"{source.file}: no tasks in the file; nothing was added")
    jobs: list[tuple[int, dict[str, Any]]] = []
    callbacks: list[tuple[int, dict[str, Any]]] = []
    problems: list[tuple[int, list[Any], str]] = []
    for index, item in enumerate(source.items):
        if isinstance(item, dict) and "type" in item:
            if queue and not item.get("queue"):
                item = dict(item, queue=queue)
            jobs.append((index, item))
        elif isinstance(item, dict) and ("a_number" in item or "b_number" in item):
            callbacks.append((index, item))
        else:
            problems.append(
                (
                    index,
                    [],
                    "neither an AddJob object (with 'type') nor a scheduler task "
                    "(with 'a_number' and 'b_number')",
                )
            )
    from ringback.service import parse_callback_tasks, parse_jobs  # pydantic models: when run

    parsers: list[tuple[Callable[[list[Any]], object], list[tuple[int, dict[str, Any]]]]] = [
        (parse_jobs, jobs),
        (parse_callback_tasks, callbacks),
    ]
    for parse, entries in parsers:
        if not entries:
            continue
        try:
            parse([item for _, item in entries])
        except InvalidInput as exc:
            for detail in exc.details:
                loc = list(detail["loc"])
                index = entries[loc[0]][0] if loc and isinstance(loc[0], int) else 0
                problems.append((index, loc[1:], detail["msg"]))
    if problems:
        problems.sort(key=lambda problem: problem[0])
        details = []
        for index, loc, msg in problems:
            if source.flags is not None and msg == "Field required":
                msg = f"required for {_a(source.kind)} task"
            details.append({"loc": [index, *loc], "where": source.where(index, loc), "msg": msg})
        raise InvalidInput(source.problem(len(details)), details)
    return jobs, callbacks
