"""PostgreSQL's SQL of the call legs (``store/legs_sql.py``): the write-ahead legs of a batch
of attempts in one round trip, whatever their kinds (opens, answers, ends), the do-not-call
lists and the campaign rules checked on the way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from ringback.domain.model import LegState
from ringback.domain.suppression import Suppression, lookup_keys
from ringback.store import legs_sql as legs
from ringback.store.campaign_rules import check_opens
from ringback.store.driver import Conn
from ringback.store.legs_sql import LegWrite, OpenedLegs, dumps
from ringback.store.schema import calls
from ringback.store.suppressions import MATCH_ORDER

#: one statement's parameter, a JSON list of ids, as a subquery
_IDS = "(SELECT jsonb_array_elements_text($1::jsonb)::bigint)"
_ATTEMPT_LEGS = legs.attempt_legs_sql(_IDS)
_CLOSE_LEGS = legs.close_legs_sql(_IDS)
_CALL_SELECT = (
    "SELECT " + ", ".join("c." + f for f in legs.CALL_FIELDS) + ", t.client_id, t.queue_id, t.id"
)


def _pg_type(column: sa.Column[Any]) -> str:
    """The PostgreSQL type ``jsonb_to_recordset`` reads a ``calls`` column as."""
    kind = getattr(column.type, "impl_instance", column.type)  # a type decorator's own type
    if isinstance(kind, sa.JSON):
        return "jsonb"
    if isinstance(kind, sa.BigInteger):
        return "bigint"
    if isinstance(kind, sa.Integer):
        return "int"
    if isinstance(kind, sa.Text):
        return "text"
    raise TypeError(f"calls.{column.name}: no PostgreSQL type for {kind!r}")


#: the ``legs.CALL_FIELDS`` columns with their types, as the table declares them
_CALL_TYPES = ", ".join(f"{name} {_pg_type(calls.c[name])}" for name in legs.CALL_FIELDS)


def call_doc(values: tuple[Any, ...], task_id: int, fence: int | None = None) -> dict[str, Any]:
    """A ``call_values`` tuple as one element of the JSON document PostgreSQL reads."""
    record = dict(zip(legs.CALL_FIELDS, values, strict=True))
    record["played"] = orjson.Fragment(record["played"])
    record["detail"] = orjson.Fragment(record["detail"])
    for name in ("fax", "amd"):
        if record[name] is not None:
            record[name] = orjson.Fragment(record[name])
    record["task_id"] = task_id
    if fence is not None:
        record["fence"] = fence
    return record


# A task of a batch still running its attempt, found by its key (``t``: the tasks row). Not
# written ``t.status = 'executed'``: that matches the partial index of running tasks, and
# whenever the last ANALYZE counted few running tasks (after a bulk load, on a new database)
# the planner then reads that whole index (every call in flight, up to thousands) for each
# batch and joins it; compared through ``lower()``, which no index predicate matches, each row
# is read by its key (docs/performance.md, seventh and eighth steps).
STILL_RUNNING = "lower(t.status) = 'executed'"


class PostgresLegs:
    """Leg writes: one round trip for a batch of writes of any kinds."""

    _source = (
        f"FROM jsonb_to_recordset($1::jsonb) AS c(task_id bigint, fence bigint, {_CALL_TYPES})"
    )
    # an answer and an end of one leg never share a batch with its open (the leg is dialled
    # only once its open committed); the worker drops an answer it is about to end anyway.
    # An open whose called number is on a do-not-call list of the task's client (its prefixes
    # ``keys`` looked up in the suppressions index) is not stored: it is returned with the
    # entry that matched, and never dialled
    # An open of a client with campaign rules (frequency caps, allowed caller ids) is not
    # stored either unless ``$2`` (the rules were checked, under the callees' locks): it is
    # returned ``ruled`` for :meth:`write_ruled`
    _write = (
        "WITH opens AS (SELECT c.*, t.client_id, t.queue_id, s.number AS s_number, "
        "s.prefix AS s_prefix, s.list_name AS s_list, s.source AS s_source, "
        "(NOT $2::boolean AND (EXISTS (SELECT 1 FROM frequency_caps f WHERE f.client_id = "
        "t.client_id) OR EXISTS (SELECT 1 FROM caller_ids i WHERE i.client_id = t.client_id))"
        ") AS ruled "
        f"FROM jsonb_to_recordset($1::jsonb) AS c(task_id bigint, fence bigint, keys text[], "
        f"{_CALL_TYPES}) JOIN tasks t ON t.id = c.task_id AND t.fence = c.fence "
        f"AND {STILL_RUNNING} LEFT JOIN LATERAL (SELECT s.number, s.prefix, s.list_name, "
        "s.source FROM suppressions s WHERE s.client_id = t.client_id "
        "AND s.number = ANY(c.keys) AND (s.prefix OR s.number = c.keys[1]) "
        "AND (s.expires_at IS NULL OR s.expires_at > c.started_at) "
        f"ORDER BY {MATCH_ORDER} LIMIT 1) s ON true "
        "WHERE c.state = 'dialing' FOR KEY SHARE OF t), "
        "opened AS ("
        + legs.insert(
            "SELECT "
            + ", ".join("o." + f for f in legs.CALL_FIELDS)
            + ", o.client_id, o.queue_id, o.task_id FROM opens o "
            "WHERE o.s_number IS NULL AND NOT o.ruled",
            legs.KEEP,
        )
        + " RETURNING leg_uuid), "
        "answered AS (UPDATE calls k SET state = 'answered', answered_at = c.answered_at, "
        f"ringing_at = COALESCE(k.ringing_at, c.ringing_at, c.answered_at) {_source} "
        "WHERE c.state = 'answered' AND k.leg_uuid = c.leg_uuid AND k.state = 'dialing'), "
        "ended AS ("
        + legs.insert(
            f"{_CALL_SELECT} {_source} JOIN tasks t ON t.id = c.task_id WHERE c.state = 'ended'",
            legs.REPLACE,
        )
        + ") SELECT leg_uuid, NULL, NULL, NULL, NULL, NULL::bigint FROM opened UNION ALL "
        "SELECT leg_uuid, s_number, s_prefix, s_list, s_source, NULL FROM opens "
        "WHERE s_number IS NOT NULL UNION ALL "
        "SELECT leg_uuid, NULL, NULL, NULL, NULL, client_id FROM opens "
        "WHERE s_number IS NULL AND ruled"
    )
    #: one callee at a time per client, until the transaction ends (campaign_rules.py)
    _lock = (
        "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
        "FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k) AS keys"
    )

    def upsert_sql(self) -> str:
        """For the completion statement: finished legs read from ``$3`` (see PostgresClaims)."""
        return legs.insert(
            f"{_CALL_SELECT} FROM jsonb_to_recordset($3::jsonb) AS c(task_id bigint, "
            f"{_CALL_TYPES}) JOIN tasks t ON t.id = c.task_id",
            legs.REPLACE,
        )

    async def write(self, conn: Conn, writes: Sequence[LegWrite]) -> OpenedLegs:
        doc = []
        for w in writes:
            item = call_doc(legs.fixed(w), w.task_id, w.fence)
            if w.state is LegState.DIALING:
                item["keys"] = lookup_keys(w.record.to_number)
            doc.append(item)
        return await self._run(conn, doc, checked=False)

    async def _run(self, conn: Conn, doc: list[dict[str, Any]], *, checked: bool) -> OpenedLegs:
        rows = (await conn.exec_driver_sql(self._write, (dumps(doc), checked))).all()
        opened = OpenedLegs(row[0] for row in rows if row[1] is None and row[5] is None)
        for row in rows:
            if row[1] is not None:
                opened.suppressed[row[0]] = Suppression(row[3], row[4], row[1], bool(row[2]))
            elif row[5] is not None:
                opened.ruled[row[0]] = int(row[5])
        return opened

    async def write_ruled(
        self, conn: Conn, writes: Sequence[LegWrite], clients: dict[str, int]
    ) -> OpenedLegs:
        """Lock each (client, number), then count and write (the count sees every leg the
        previous holders of the lock committed)."""
        keys = sorted({f"{clients[w.record.leg_uuid]}:{w.record.to_number}" for w in writes})
        await conn.exec_driver_sql(self._lock, (keys,))  # in one order: no deadlock
        ruled = await check_opens(conn, [(w, clients[w.record.leg_uuid]) for w in writes])
        doc = []
        for w in writes:
            if w.record.leg_uuid not in ruled.capped and w.record.leg_uuid not in ruled.refused:
                item = call_doc(legs.fixed(w), w.task_id, w.fence)
                item["keys"] = lookup_keys(w.record.to_number)
                doc.append(item)
        opened = await self._run(conn, doc, checked=True) if doc else OpenedLegs()
        opened.capped, opened.refused = ruled.capped, ruled.refused
        return opened

    async def attempt_legs(self, conn: Conn, task_ids: Sequence[int]) -> list[Any]:
        return list(await conn.exec_driver_sql(_ATTEMPT_LEGS, (dumps(list(task_ids)),)))

    async def close(self, conn: Conn, task_ids: Sequence[int]) -> None:
        await conn.exec_driver_sql(_CLOSE_LEGS, (dumps(list(task_ids)),))
