"""Write-ahead call legs: the writes, and the SQL both drivers share (DESIGN §4, "calls are
durable").

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
(``CALL_FIELDS``). Each driver writes the statements out for its database (``store/sqlite.py``,
``store/postgres.py``) from the pieces here.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import orjson

from ringback.domain.cdr import CDR_FIELDS, RECORD_FIELDS, STORED_FIELDS, CallRecord, duration_ms
from ringback.domain.frequency_caps import CallerIdRefused, CapDelay
from ringback.domain.model import LegState
from ringback.domain.suppression import Suppression

#: the columns of a leg written from a record: the one CDR field list
CALL_FIELDS = CDR_FIELDS

#: what a leg closed by the reaper says about how it ended
INTERRUPTED_DISPOSITION = "interrupted"
INTERRUPTED_CAUSE = "WORKER_LOST"
#: the disposition of a leg stored, then refused by the dialer: no call left (not counted)
NOT_SENT = "not_sent"
_OPEN = (LegState.DIALING.value, LegState.ANSWERED.value)


def dumps(value: Any) -> str:
    """JSON text (orjson: datetimes become ISO 8601)."""
    return orjson.dumps(value, default=str).decode()


def ms(when: Any) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


#: the types a column stores as they are (checked first: most values are one of these)
_AS_IS = frozenset((str, int, float, bool, type(None)))


def _column(value: Any) -> Any:
    """A field's value as plain SQL stores it: times in ms, enums by value, JSON as text."""
    if type(value) in _AS_IS:
        return value
    if isinstance(value, datetime):
        return ms(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | dict):
        return dumps(value)
    return value


#: a record's fields in ``RECORD_FIELDS`` order, as one tuple (one C call, no dict)
_record_fields = operator.attrgetter(*RECORD_FIELDS)
if STORED_FIELDS != ("attempt", "duration_ms", "billsec_ms", "state", "worker"):
    raise RuntimeError("call_values writes the stored fields in another order")  # pragma: no cover


def call_values(
    rec: CallRecord, attempt: int, *, worker: str | None = None, state: str = "ended"
) -> tuple[Any, ...]:
    """A call record in ``CALL_FIELDS`` order (the record's fields, then the stored ones)."""
    as_is, column = _AS_IS, _column
    values = [v if type(v) in as_is else column(v) for v in _record_fields(rec)]
    values += (
        attempt or None,
        duration_ms(rec.duration_s),
        duration_ms(rec.billsec),
        column(state),
        column(worker if worker is not None else rec.detail.get("worker")),
    )
    return tuple(values)


@dataclass(slots=True)
class LegWrite:
    """One write of a leg of a task's attempt (see the module docstring)."""

    task_id: int
    fence: int  # open only: written only while the task's fence still holds
    attempt: int
    worker: str
    record: CallRecord
    state: LegState  # DIALING: open; ANSWERED: answer; ENDED: end


class OpenedLegs(set[str]):
    """The leg_uuids of the opens a write accepted; ``suppressed``: the opens refused because
    their called number is on one of the client's do-not-call lists, with the entry that
    matched (``ringback.domain.suppression``). A refused open is not stored and not dialled.
    ``capped``: refused by a frequency cap of the client (until when); ``refused``: its caller
    id is not on the client's allowed list (``store/campaign_rules.py``). ``ruled``: opens of
    clients with campaign rules left for a second, locked write (PostgreSQL), with the client."""

    def __init__(
        self, accepted: Iterable[str] = (), suppressed: dict[str, Suppression] | None = None
    ) -> None:
        super().__init__(accepted)
        self.suppressed: dict[str, Suppression] = suppressed or {}
        self.capped: dict[str, CapDelay] = {}
        self.refused: dict[str, CallerIdRefused] = {}
        self.ruled: dict[str, int] = {}

    def merge(self, other: OpenedLegs) -> None:
        """Take in the answers of a second write (of the ``ruled`` opens)."""
        self.update(other)
        self.suppressed.update(other.suppressed)
        self.capped.update(other.capped)
        self.refused.update(other.refused)
        self.ruled.clear()


@dataclass(slots=True)
class AttemptLegs:
    """What the legs stored for one attempt say (the reaper's evidence)."""

    stored: int = 0
    answered: bool = False


COLUMNS = ", ".join((*CALL_FIELDS, "client_id", "queue_id", "task_id"))
#: a leg written again replaces what was known (a later write always knows more)
REPLACE = "ON CONFLICT (leg_uuid) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in CALL_FIELDS if c != "leg_uuid"
)
KEEP = "ON CONFLICT (leg_uuid) DO NOTHING"


def insert(rows: str, conflict: str) -> str:
    """``INSERT INTO calls`` of ``COLUMNS`` from ``rows`` (VALUES or SELECT), on ``conflict``."""
    return f"INSERT INTO calls ({COLUMNS}) {rows} {conflict}"


def fixed(write: LegWrite) -> tuple[Any, ...]:
    """The leg a write stores, in ``CALL_FIELDS`` order."""
    return call_values(write.record, write.attempt, worker=write.worker, state=write.state.value)


def close_legs_sql(task_ids: str) -> str:
    """Mark the open legs of the tasks ``task_ids`` (a subquery) ``interrupted``."""
    return (
        f"UPDATE calls SET state = '{LegState.INTERRUPTED.value}', "
        f"hangup_disposition = COALESCE(hangup_disposition, '{INTERRUPTED_DISPOSITION}'), "
        f"hangup_cause = COALESCE(hangup_cause, '{INTERRUPTED_CAUSE}'), "
        "outcome = COALESCE(outcome, CASE WHEN answered_at IS NOT NULL THEN 'answered' END) "
        f"WHERE task_id IN {task_ids} AND state IN {_OPEN}"
    )


def attempt_legs_sql(task_ids: str) -> str:
    """Per task of ``task_ids`` (a subquery): its current attempt's stored legs that may have
    been dialled (not those its worker stored as not sent) and whether one answered."""
    return (
        f"SELECT c.task_id, sum(CASE WHEN c.hangup_disposition = '{NOT_SENT}' THEN 0 ELSE 1 END), "
        "max(CASE WHEN c.answered_at IS NOT NULL THEN 1 ELSE 0 END) "
        f"FROM calls c JOIN tasks t ON t.id = c.task_id AND c.attempt = t.attempt "
        f"WHERE c.task_id IN {task_ids} GROUP BY c.task_id"
    )
