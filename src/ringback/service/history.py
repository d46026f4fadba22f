"""The call history (seed B7): a client's calls, one record per call, each summing up its legs.

This application module owns the assembly of a call's stored legs into the call-history view
(plain JSON-ready values); ``api/routes/call_history.py`` parses requests and serializes what
it returns (``api/history_schemas.py`` describes the view for the OpenAPI docs).

A call is every leg of one attempt (they share a ``call_uuid``): the single ``main`` leg of a
msg_call / ivr_call (plus ``transfer`` legs of an IVR), or the ``a`` legs and the ``b`` leg of a
callback. The record sums the legs up; ``cdr`` lists them one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ringback.domain.cdr import MS_FIELDS, TIME_FIELDS, shown_fields, view_names
from ringback.domain.outcomes import a_leg_rank
from ringback.domain.rows import CallRow
from ringback.domain.task_rules import format_seed_time
from ringback.store import Store

#: the CDR fields a leg of the history names otherwise (times in the seed's ``*_time_gmt``)
CDR_LEG_RENAMED = view_names("gmt")
#: the CDR fields a leg of the history does not show (the call record shows the call's own)
CDR_LEG_HIDDEN = frozenset({"call_uuid", "direction", "caller_id_name", "attempt", "worker"})
#: the history's count stops near this many calls (``CallHistory.count``)
COUNT_CAP = 10_000
#: legs read per call counted at most: the count reads at most COUNT_CAP * this many legs
COUNT_LEGS_PER_CALL = 3
#: CDR field -> name in a leg of the history (``CdrLeg``)
CDR_LEG_FIELDS = shown_fields(CDR_LEG_RENAMED, CDR_LEG_HIDDEN)


@dataclass(frozen=True, slots=True)
class CallCount:
    """How many calls match: ``calls`` exactly, or at least ``calls`` when not ``exact``."""

    calls: int
    exact: bool

    @property
    def shown(self) -> str:
        """``1,234`` when exact; else at least that many: ``10,000+`` (at most COUNT_CAP)."""
        if self.exact:
            return f"{self.calls:,}"
        return f"{min(self.calls, COUNT_CAP):,}+"


class CallHistory:
    """A client's calls, each as one record (:func:`call_record`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def page(
        self,
        client_id: int,
        *,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """The client's calls that started in [start, end), oldest first, and how many there
        are in all. A call is counted once even if its legs started at different times: by
        its first leg that started in the period."""
        calls, total = await self.store.call_history(
            client_id, start=start, end=end, limit=limit, offset=offset
        )
        return [call_record(client_id, legs) for legs in calls if legs], total

    async def recent(
        self,
        client_id: int,
        *,
        before: tuple[int, int] | None,
        start: datetime | None,
        end: datetime | None,
        outcome: str | None,
        limit: int,
    ) -> tuple[list[list[CallRow]], tuple[int, int] | None]:
        """A page of the client's calls (each its legs, in order), newest first, by key: those
        that started in [start, end), with a leg that ended with ``outcome`` if given; and the
        key of the next page (None: the last page). See ``Store.recent_calls``."""
        return await self.store.recent_calls(
            client_id, before=before, start=start, end=end, outcome=outcome, limit=limit
        )

    async def count(
        self,
        client_id: int,
        *,
        start: datetime | None,
        end: datetime | None,
        outcome: str | None,
    ) -> CallCount:
        """How many calls :meth:`recent` pages through for these filters, reading at most
        ``COUNT_CAP * COUNT_LEGS_PER_CALL`` legs (the newest) so that it stays fast however
        many calls the client made: past that it is a lower bound (``exact`` False)."""
        found, exact = await self.store.count_calls(
            client_id, start=start, end=end, outcome=outcome,
            max_legs=COUNT_CAP * COUNT_LEGS_PER_CALL,
        )  # fmt: skip
        return CallCount(found, exact)

    async def one(self, client_id: int, call_uuid: str) -> dict[str, Any] | None:
        """The client's call ``call_uuid``; None if there is none."""
        legs = await self.store.calls(call_uuid=call_uuid, client_id=client_id)
        return call_record(client_id, legs) if legs else None

    async def legs(
        self,
        *,
        task_id: int | None = None,
        call_uuid: str | None = None,
        client_id: int | None = None,
    ) -> list[CallRow]:
        """The stored legs of a task's calls or of one call, in order (the CLI shows them)."""
        return await self.store.calls(task_id=task_id, call_uuid=call_uuid, client_id=client_id)


# --- building records ---------------------------------------------------------------------


def _seconds(ms: int | None) -> int | None:
    return None if ms is None else max(ms, 0) // 1000


def _between(first: datetime | None, last: datetime | None) -> int | None:
    if first is None or last is None:
        return None
    return max(int((last - first).total_seconds() * 1000), 0) // 1000


def _earliest(times: Sequence[datetime | None]) -> datetime | None:
    known = [when for when in times if when is not None]
    return min(known) if known else None


def _latest(times: Sequence[datetime | None]) -> datetime | None:
    known = [when for when in times if when is not None]
    return max(known) if known else None


def _best_a_leg(a_legs: Sequence[CallRow]) -> CallRow:
    """The A leg that answered, else the one whose outcome the attempt reports."""
    return min(a_legs, key=lambda leg: a_leg_rank(leg.outcome))  # min keeps the first: dial order


def _application(legs: Sequence[CallRow]) -> str | None:
    """The kind of task that placed the call (``callback``, ``msg_call``, ``ivr_call``)."""
    return next((leg.task_kind for leg in legs if leg.task_kind), None)


def _leg_value(field: str, value: Any) -> Any:
    if field in TIME_FIELDS:
        return format_seed_time(value)
    if field in MS_FIELDS:
        return _seconds(value)
    return value


def cdr_leg(leg: CallRow) -> dict[str, Any]:
    """One leg as the history's ``cdr`` lists it (``CDR_LEG_FIELDS``)."""
    return {name: _leg_value(field, getattr(leg, field)) for field, name in CDR_LEG_FIELDS.items()}


@dataclass(slots=True, frozen=True)
class _Roles:
    """Which leg plays which part in a call."""

    primary: CallRow  # says how the call went: main, else B, else the A leg reported
    callee: CallRow | None  # main or B
    caller: CallRow  # the A leg reported, else primary
    a_leg: CallRow | None


def _roles(legs: Sequence[CallRow]) -> _Roles:
    main = next((leg for leg in legs if leg.leg == "main"), None)
    b_leg = next((leg for leg in legs if leg.leg == "b"), None)
    a_legs = [leg for leg in legs if leg.leg == "a"]
    a_leg = _best_a_leg(a_legs) if a_legs else None
    primary = main or b_leg or a_leg or legs[0]
    return _Roles(primary=primary, callee=main or b_leg, caller=a_leg or primary, a_leg=a_leg)


def _partner(bridged: Sequence[CallRow], caller: CallRow) -> CallRow | None:
    """The party the call was connected to: a B or transfer leg, else a bridged leg that is
    not the caller's."""
    partner = next((leg for leg in bridged if leg.leg in ("b", "transfer")), None)
    if partner is None and len(bridged) > 1:
        partner = next((leg for leg in bridged if leg is not caller), None)
    return partner


def _bridge(legs: Sequence[CallRow], caller: CallRow) -> dict[str, Any]:
    """When the call was connected, for how long, and to whom."""
    bridged = [leg for leg in legs if leg.bridged_at is not None]
    bridged_at = _earliest([leg.bridged_at for leg in bridged])
    bridge_end = _earliest([leg.ended_at for leg in bridged])  # the first to hang up ends it
    partner = _partner(bridged, caller)
    return {
        "bridged_duration": _between(bridged_at, bridge_end) if bridged_at is not None else None,
        "bridged_time_gmt": format_seed_time(bridged_at),
        "bridged_username": partner.to_number if partner is not None else None,
    }


def _times(legs: Sequence[CallRow]) -> dict[str, Any]:
    """When the call started (first leg), was answered (first answer) and ended (last leg)."""
    started = min(leg.started_at for leg in legs)
    ended = _latest([leg.ended_at for leg in legs])
    return {
        "start_time_gmt": format_seed_time(started) or "",
        "answer_time_gmt": format_seed_time(_earliest([leg.answered_at for leg in legs])),
        "end_time_gmt": format_seed_time(ended),
        "duration": _between(started, ended),
    }


def _parties(roles: _Roles) -> dict[str, Any]:
    """Who called whom: the A number of a callback, else the caller id of the call."""
    primary = roles.primary
    return {
        "call_uuid": primary.call_uuid,
        "flow": "in" if primary.direction == "inbound" else "out",
        "from_username": (
            roles.caller.to_number if roles.a_leg is not None else primary.from_number
        ),
        "from_screen_name": primary.caller_id_name,
        "to_username": roles.callee.to_number if roles.callee is not None else None,
    }


def call_record(client_id: int, legs: Sequence[CallRow]) -> dict[str, Any]:
    """Sum up the legs of one call (``legs`` is not empty): a ``CallHistoryRecord``'s fields."""
    roles = _roles(legs)
    primary = roles.primary
    return {
        **_parties(roles),
        **_times(legs),
        **_bridge(legs, roles.caller),
        "hangup_cause": primary.hangup_cause,
        "hangup_disposition": primary.hangup_disposition,
        "result": primary.outcome,
        "task_id": next((leg.task_id for leg in legs if leg.task_id is not None), None),
        "attempt": next((leg.attempt for leg in legs if leg.attempt is not None), None),
        "client_owner_id": client_id,
        "application": _application(legs),
        "cdr": [cdr_leg(leg) for leg in legs],
    }
