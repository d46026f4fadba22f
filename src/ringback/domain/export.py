"""CSV exports of tasks and calls: their columns, and one row of each, made safe to open in a
spreadsheet.

Every time is UTC in ISO 8601 (``2024-05-01T09:00:00Z``, milliseconds when there are some);
an empty cell is a missing value. A cell that a spreadsheet would read as a formula (it starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading apostrophe, as
OWASP's "CSV injection" advice says; a plain number such as ``-5`` or ``+33612345678`` keeps
that prefix too, so that an opened file shows what was stored (the apostrophe is visible only
in a text editor). Quoting is the csv module's (RFC 4180): a cell with a comma, a quote or a
line break is quoted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ringback.domain.rows import CallRow, TaskRow

#: the first characters that make a spreadsheet read a cell as a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

#: (column, what it holds) of a tasks export, in order
TASK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "the task id"),
    ("queue_id", "its queue"),
    ("kind", "callback, msg_call or ivr_call"),
    ("name", "the task's name"),
    ("status", "scheduled, executed, delayed, delayed_interval, finished, ..."),
    ("finish_result", "success or failed, once finished"),
    ("finish_comment", "why it finished so (e.g. canceled, expired, a do-not-call list)"),
    ("priority", "0-9, higher first"),
    ("tries_used", "attempts made"),
    ("max_tries", "attempts allowed"),
    ("calling_number", "a job's caller id"),
    ("called_number", "the number called (a callback's B number)"),
    ("a_number", "a callback's A number"),
    ("timezone", "the time zone its calling hours are read in"),
    ("run_at", "when it is next due"),
    ("expires_at", "when it fails as expired if not completed"),
    ("created_at", "when it was added"),
    ("updated_at", "when it last changed"),
    ("first_attempt_at", "its first attempt"),
    ("last_attempt_at", "its last attempt"),
    ("finished_at", "when it finished"),
)

#: (column, what it holds) of a calls export, one row per call (its legs summed up)
CALL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("call_uuid", "the call's id (its legs share it)"),
    ("direction", "outbound or inbound"),
    ("from_number", "the caller id, or a callback's A number"),
    ("to_number", "the number called (a callback's B number)"),
    ("result", "answered, busy, no_answer, rejected, invalid_number, failed, canceled, ..."),
    ("sip_code", "the final SIP code of the call's main (or B) leg"),
    ("hangup_cause", "the hangup cause"),
    ("started_at", "its first leg started"),
    ("answered_at", "first answered"),
    ("ended_at", "its last leg ended"),
    ("duration_s", "seconds from start to end"),
    ("billsec_s", "seconds answered (the main or B leg)"),
    ("task_id", "the task whose attempt placed it (empty: inbound)"),
    ("queue_id", "that task's queue"),
    ("attempt", "which attempt of the task"),
    ("application", "the task's kind"),
    ("legs", "how many legs the call had"),
)


def iso_utc(when: datetime | None) -> str:
    """UTC ISO 8601 with a ``Z`` (milliseconds only when there are some); '' for None."""
    if when is None:
        return ""
    when = when.astimezone(UTC)
    spec = "milliseconds" if when.microsecond else "seconds"
    return when.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def safe_cell(value: Any) -> str:
    """A value as a CSV cell a spreadsheet will not run: text starting like a formula gets a
    leading apostrophe; None is empty; booleans are true / false."""
    kind = type(value)
    if kind is str:
        text: str = value
        return "'" + text if text.startswith(FORMULA_STARTS) else text
    if kind is int:
        return str(value) if value >= 0 else "'" + str(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso_utc(value)
    shown = str(value)
    return "'" + shown if shown.startswith(FORMULA_STARTS) else shown


def _number(payload: dict[str, Any], *fields: str) -> Any:
    return next((payload[f] for f in fields if payload.get(f) not in (None, "")), None)


def task_cells(row: TaskRow) -> list[Any]:
    """The values of :data:`TASK_COLUMNS` for one task (not yet made safe)."""
    payload = row.payload if isinstance(row.payload, dict) else {}
    return [
        row.id, row.queue_id, row.kind.value,
        row.name, row.status, row.finish_result, row.finish_comment, row.priority,
        row.tries_used, row.max_tries,
        _number(payload, "calling_number"),
        _number(payload, "called_number", "b_number"),
        _number(payload, "a_number"),
        row.timezone, row.run_at, row.expires_at, row.created_at, row.updated_at,
        row.first_attempt_at, row.last_attempt_at, row.finished_at,
    ]  # fmt: skip


def call_cells(legs: Sequence[CallRow]) -> list[Any]:
    """The values of :data:`CALL_COLUMNS` for one call (``legs`` not empty, in order)."""
    main = next((leg for leg in legs if leg.leg in ("main", "b")), legs[0])
    a_leg = next((leg for leg in legs if leg.leg == "a"), None)
    started = min(leg.started_at for leg in legs)
    answered = [leg.answered_at for leg in legs if leg.answered_at is not None]
    ended = [leg.ended_at for leg in legs if leg.ended_at is not None]
    end = max(ended) if ended else None
    duration = None if end is None else max(int((end - started).total_seconds()), 0)
    task_leg = next((leg for leg in legs if leg.task_id is not None), main)
    return [
        main.call_uuid, main.direction,
        a_leg.to_number if a_leg is not None else main.from_number,
        main.to_number, main.outcome, main.sip_code, main.hangup_cause, started,
        min(answered) if answered else None, end, duration,
        None if main.billsec_ms is None else max(main.billsec_ms, 0) // 1000,
        task_leg.task_id, task_leg.queue_id, task_leg.attempt,
        next((leg.task_kind for leg in legs if leg.task_kind), None), len(legs),
    ]  # fmt: skip


def csv_lines(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as CSV text (CRLF line ends, RFC 4180), every cell through :func:`safe_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows([safe_cell(value) for value in row] for row in rows)
    return buffer.getvalue()


def header(columns: Sequence[tuple[str, str]]) -> str:
    """The header line of an export."""
    return csv_lines([[name for name, _ in columns]])
