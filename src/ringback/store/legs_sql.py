"""Write-ahead call legs as plain SQL, one driver per database (DESIGN §4 "calls are durable").

A leg is written four ways, each an idempotent statement keyed by ``leg_uuid`` (unique):

- **open**, before the dialer is asked to originate it: a ``dialing`` row, written only while the
  worker still holds the task (its fence, status ``executed``). On PostgreSQL the task row is
  share-locked (``FOR KEY SHARE``) so that a reaper, which locks the rows it reaps ``FOR UPDATE``,
  either sees the leg or makes the open fail: a leg is never dialled for a task already reaped;
- **answer**: ``dialing`` -> ``answered`` with ``answered_at``, as soon as the callee answers;
- **end**: the whole record, ``ended``, with or without the task's result (an upsert, never
  fenced: a result that arrives after its task was reaped is still the call's record);
- **close**: the reaper marks the legs of a dead worker ``interrupted``, keeping what is known.

The columns written are the one CDR field list, ``ringback.domain.cdr.CDR_FIELDS``
(``CALL_FIELDS``); their PostgreSQL types are read from the ``calls`` table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

import orjson
import sqlalchemy as sa

from ringback.domain.cdr import CDR_FIELDS, CallRecord, duration_ms, record_values
from ringback.domain.model import LegState
from ringback.store.schema import calls

#: the columns of a leg written from a record: the one CDR field list
CALL_FIELDS = CDR_FIELDS

#: what a leg closed by the reaper says about how it ended
INTERRUPTED_DISPOSITION = "interrupted"
INTERRUPTED_CAUSE = "WORKER_LOST"
_OPEN = (LegState.DIALING.value, LegState.ANSWERED.value)


def dumps(value: Any) -> str:
    """JSON text (orjson: datetimes become ISO 8601)."""
    return orjson.dumps(value, default=str).decode()


def ms(when: Any) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def _column(value: Any) -> Any:
    """A field's value as plain SQL stores it: times in ms, enums by value, JSON as text."""
    if isinstance(value, datetime):
        return ms(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | dict):
        return dumps(value)
    return value


def call_values(
    rec: CallRecord, attempt: int, *, worker: str | None = None, state: str = "ended"
) -> tuple[Any, ...]:
    """A call record in ``CALL_FIELDS`` order."""
    values = record_values(rec)
    values.update(
        attempt=attempt or None,
        duration_ms=duration_ms(rec.duration_s),
        billsec_ms=duration_ms(rec.billsec),
        state=state,
        worker=worker if worker is not None else rec.detail.get("worker"),
    )
    return tuple(_column(values[name]) for name in CALL_FIELDS)


@dataclass(slots=True)
class LegWrite:
    """One write of a leg of a task's attempt (see the module docstring)."""

    task_id: int
    fence: int  # open only: written only while the task's fence still holds
    attempt: int
    worker: str
    record: CallRecord
    state: LegState  # DIALING: open; ANSWERED: answer; ENDED: end


@dataclass(slots=True)
class AttemptLegs:
    """What the legs stored for one attempt say (the reaper's evidence)."""

    stored: int = 0
    answered: bool = False


class Connection(Protocol):
    async def exec_driver_sql(self, sql: str, parameters: Any = None) -> Any: ...


_COLUMNS = ", ".join((*CALL_FIELDS, "client_id", "queue_id", "task_id"))
#: a leg written again replaces what was known (a later write always knows more)
_REPLACE = "ON CONFLICT (leg_uuid) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in CALL_FIELDS if c != "leg_uuid"
)
_KEEP = "ON CONFLICT (leg_uuid) DO NOTHING"
_SQLITE_VALUES = f"VALUES ({', '.join('?' * (len(CALL_FIELDS) + 3))})"
_PG_SELECT = (
    "SELECT " + ", ".join("c." + f for f in CALL_FIELDS) + ", t.client_id, t.queue_id, t.id"
)


def _insert(rows: str, conflict: str) -> str:
    return f"INSERT INTO calls ({_COLUMNS}) {rows} {conflict}"


def _fixed(write: LegWrite) -> tuple[Any, ...]:
    return call_values(write.record, write.attempt, worker=write.worker, state=write.state.value)


class LegsSql(Protocol):
    def upsert_sql(self) -> str:
        """The statement that stores finished legs (``CALL_FIELDS`` + client, queue, task)."""
        ...

    async def write(self, conn: Connection, writes: Sequence[LegWrite]) -> set[str]:
        """Apply the writes; returns the leg_uuids of the opens that were accepted."""
        ...


class SqliteLegsSql:
    _current = (
        "SELECT id, fence, status, client_id, queue_id FROM tasks "
        "WHERE id IN (SELECT value FROM json_each(?))"
    )
    _open = _insert(_SQLITE_VALUES, _KEEP)
    _answer = (
        "UPDATE calls SET state = 'answered', answered_at = ?, ringing_at = COALESCE("
        "ringing_at, ?) WHERE leg_uuid = ? AND state = 'dialing'"
    )

    def upsert_sql(self) -> str:
        return _insert(_SQLITE_VALUES, _REPLACE)

    async def write(self, conn: Connection, writes: Sequence[LegWrite]) -> set[str]:
        ids = sorted({w.task_id for w in writes})
        rows = (await conn.exec_driver_sql(self._current, (dumps(ids),))).all()
        tasks = {row[0]: row for row in rows}
        opens, answers, ends = [], [], []
        accepted: set[str] = set()
        for w in writes:
            task = tasks.get(w.task_id)
            if w.state is LegState.DIALING:
                if task is None or task[2] != "executed" or task[1] != w.fence:
                    continue
                accepted.add(w.record.leg_uuid)
                opens.append((*_fixed(w), task[3], task[4], w.task_id))
            elif w.state is LegState.ANSWERED:
                at = ms(w.record.answered_at)
                answers.append((at, ms(w.record.ringing_at) or at, w.record.leg_uuid))
            elif task is not None:
                ends.append((*_fixed(w), task[3], task[4], w.task_id))
        if opens:
            await conn.exec_driver_sql(self._open, opens)
        if answers:
            await conn.exec_driver_sql(self._answer, answers)
        if ends:
            await conn.exec_driver_sql(self.upsert_sql(), ends)
        return accepted


def _pg_type(column: sa.Column[Any]) -> str:
    """The PostgreSQL type ``jsonb_to_recordset`` reads a ``calls`` column as."""
    kind = column.type
    if isinstance(kind, sa.JSON):
        return "jsonb"
    if isinstance(kind, sa.BigInteger):
        return "bigint"
    if isinstance(kind, sa.Integer):
        return "int"
    if isinstance(kind, sa.Text):
        return "text"
    raise TypeError(f"calls.{column.name}: no PostgreSQL type for {kind!r}")


#: the ``CALL_FIELDS`` columns with their types, as the table declares them
_PG_CALL_TYPES = ", ".join(f"{name} {_pg_type(calls.c[name])}" for name in CALL_FIELDS)


def pg_call_doc(values: tuple[Any, ...], task_id: int, fence: int | None = None) -> dict[str, Any]:
    """A ``call_values`` tuple as one element of the JSON document PostgreSQL reads."""
    record = dict(zip(CALL_FIELDS, values, strict=True))
    record["played"] = orjson.Fragment(record["played"])
    record["detail"] = orjson.Fragment(record["detail"])
    record["task_id"] = task_id
    if fence is not None:
        record["fence"] = fence
    return record


class PostgresLegsSql:
    """One round trip for a batch of leg writes of any kinds."""

    _source = (
        f"FROM jsonb_to_recordset($1::jsonb) AS c(task_id bigint, fence bigint, {_PG_CALL_TYPES})"
    )
    # an answer and an end of one leg never share a batch with its open (the leg is dialled
    # only once its open committed); the worker drops an answer it is about to end anyway
    _write = (
        "WITH opened AS ("
        + _insert(
            f"{_PG_SELECT} {_source} JOIN tasks t ON t.id = c.task_id AND t.fence = c.fence "
            "AND t.status = 'executed' WHERE c.state = 'dialing' FOR KEY SHARE OF t",
            _KEEP,
        )
        + " RETURNING leg_uuid), "
        "answered AS (UPDATE calls k SET state = 'answered', answered_at = c.answered_at, "
        f"ringing_at = COALESCE(k.ringing_at, c.ringing_at, c.answered_at) {_source} "
        "WHERE c.state = 'answered' AND k.leg_uuid = c.leg_uuid AND k.state = 'dialing'), "
        "ended AS ("
        + _insert(
            f"{_PG_SELECT} {_source} JOIN tasks t ON t.id = c.task_id WHERE c.state = 'ended'",
            _REPLACE,
        )
        + ") SELECT leg_uuid FROM opened"
    )

    def upsert_sql(self) -> str:
        """For the completion statement: finished legs read from ``$3`` (see claims)."""
        return _insert(
            f"{_PG_SELECT} FROM jsonb_to_recordset($3::jsonb) AS c(task_id bigint, "
            f"{_PG_CALL_TYPES}) JOIN tasks t ON t.id = c.task_id",
            _REPLACE,
        )

    async def write(self, conn: Connection, writes: Sequence[LegWrite]) -> set[str]:
        doc = [pg_call_doc(_fixed(w), w.task_id, w.fence) for w in writes]
        rows = (await conn.exec_driver_sql(self._write, (dumps(doc),))).all()
        return {row[0] for row in rows}


def legs_sql(dialect: str) -> LegsSql:
    return SqliteLegsSql() if dialect == "sqlite" else PostgresLegsSql()


def _task_ids(dialect: str) -> str:
    """The task ids of a statement's one parameter, a JSON list, as a subquery."""
    if dialect == "sqlite":
        return "(SELECT value FROM json_each(?))"
    return "(SELECT jsonb_array_elements_text($1::jsonb)::bigint)"


def close_legs_sql(dialect: str) -> str:
    """Mark the open legs of the given tasks ``interrupted`` (``?``/``$1``: JSON id list)."""
    ids = _task_ids(dialect)
    return (
        f"UPDATE calls SET state = '{LegState.INTERRUPTED.value}', "
        f"hangup_disposition = COALESCE(hangup_disposition, '{INTERRUPTED_DISPOSITION}'), "
        f"hangup_cause = COALESCE(hangup_cause, '{INTERRUPTED_CAUSE}'), "
        "outcome = COALESCE(outcome, CASE WHEN answered_at IS NOT NULL THEN 'answered' END) "
        f"WHERE task_id IN {ids} AND state IN {_OPEN}"
    )


def attempt_legs_sql(dialect: str) -> str:
    """Per task: its current attempt's stored legs and whether one answered."""
    ids = _task_ids(dialect)
    return (
        "SELECT c.task_id, count(*), max(CASE WHEN c.answered_at IS NOT NULL THEN 1 ELSE 0 END) "
        f"FROM calls c JOIN tasks t ON t.id = c.task_id AND c.attempt = t.attempt "
        f"WHERE c.task_id IN {ids} GROUP BY c.task_id"
    )
