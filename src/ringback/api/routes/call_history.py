"""``/client/{client_id}/call_history/``: the client's calls, one record per call (seed B7).

A call is every leg of one attempt (they share a ``call_uuid``): the single ``main`` leg of a
msg_call / ivr_call (plus ``transfer`` legs of an IVR), or the ``a`` legs and the ``b`` leg of a
callback. The record sums the legs up; ``cdr`` lists them one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam

from ringback.api.deps import CurrentClient, StoreDep
from ringback.api.errors import ApiError, ErrorBody
from ringback.api.history_schemas import CallHistoryPage, CallHistoryRecord, CdrLeg
from ringback.domain.outcomes import a_leg_rank
from ringback.domain.tasks import format_seed_time, parse_utc_time
from ringback.store.records import CallRow


def _plain_path(request: Request) -> None:
    """Starlette's route patterns end in ``$``, which also matches before a final newline:
    ``/call_history/%0A`` would reach the list. No call uuid has a newline: 404."""
    if "\n" in request.scope["path"]:
        raise ApiError(404, "not_found", "no such call")


router = APIRouter(tags=["call history"], dependencies=[Depends(_plain_path)])

MAX_LIMIT = 1000
MAX_OFFSET = 2**31 - 1

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No token, or a bad or expired one"},
    404: {"model": ErrorBody, "description": "Unknown client (or another client's)"},
    422: {"model": ErrorBody, "description": "A parameter is invalid; details name it"},
}
_TIME_HELP = (
    "UTC time 'YYYY-MM-DD HH:MM:SS', or ISO 8601 with a zone (e.g. 2024-05-01T09:00:00+02:00)"
)


def _time_param(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_utc_time(value)
    except (ValueError, OverflowError) as exc:
        clamped = _beyond_utc_range(value)
        if clamped is not None:
            return clamped
        raise ApiError(
            422,
            "invalid_input",
            f"invalid input: query.{name}",
            [{"loc": ["query", name], "msg": str(exc)}],
        ) from exc


def _beyond_utc_range(value: str) -> datetime | None:
    """A valid zoned time whose UTC equivalent falls before year 1 or after 9999 (such as
    0001-01-01T00:00:00+05:00) stands for the earliest or latest time there is."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        return (datetime.min if parsed.year < 5000 else datetime.max).replace(tzinfo=UTC)
    return None


@router.get(
    "/client/{client_id}/call_history/",
    response_model=CallHistoryPage,
    summary="List calls of a period",
    responses=_ERRORS,
)
async def list_call_history(
    client_id: CurrentClient,
    store: StoreDep,
    start: Annotated[
        str | None,
        Query(
            description=f"Calls that started at or after this time. {_TIME_HELP}",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            description=f"Calls that started before this time. {_TIME_HELP}",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Calls per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Calls to skip")] = 0,
) -> CallHistoryPage:
    """The client's calls that started in [start, end), oldest first.

    A call is counted once even if its legs started at different times: by its first leg
    that started in the period."""
    start_at = _time_param("start", start)
    end_at = _time_param("end", end)
    calls, total = await store.call_history(
        client_id, start=start_at, end=end_at, limit=limit, offset=offset
    )
    return CallHistoryPage(
        calls=[call_record(client_id, legs) for legs in calls if legs],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/client/{client_id}/call_history/{call_uuid}",
    response_model=CallHistoryRecord,
    summary="Get one call",
    responses=_ERRORS,
)
async def get_call(
    client_id: CurrentClient,
    store: StoreDep,
    call_uuid: Annotated[str, PathParam(description="The call's unique id")],
) -> CallHistoryRecord:
    if "\x00" in call_uuid:  # cannot be stored, and PostgreSQL refuses it in a query
        raise ApiError(404, "not_found", "no such call")
    legs = await store.calls(call_uuid=call_uuid, client_id=client_id)
    if not legs:
        raise ApiError(404, "not_found", f"no call {call_uuid}")
    return call_record(client_id, legs)


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

    return min(
        a_legs, key=lambda leg: a_leg_rank(leg.outcome)
    )  # min keeps the first of equals: dial order


def _application(legs: Sequence[CallRow]) -> str | None:
    """The kind of task that placed the call (``callback``, ``msg_call``, ``ivr_call``)."""
    return next((leg.task_kind for leg in legs if leg.task_kind), None)


def cdr_leg(leg: CallRow) -> CdrLeg:
    return CdrLeg.model_validate(
        {
            "leg_uuid": leg.leg_uuid,
            "leg": leg.leg,
            "from": leg.from_number,
            "to": leg.to_number,
            "sip_code": leg.sip_code,
            "outcome": leg.outcome,
            "hangup_cause": leg.hangup_cause,
            "hangup_disposition": leg.hangup_disposition,
            "state": leg.state,
            "start_time_gmt": format_seed_time(leg.started_at),
            "ring_time_gmt": format_seed_time(leg.ringing_at),
            "answer_time_gmt": format_seed_time(leg.answered_at),
            "end_time_gmt": format_seed_time(leg.ended_at),
            "bridged_time_gmt": format_seed_time(leg.bridged_at),
            "bridged_with": leg.bridged_with,
            "duration": _seconds(leg.duration_ms),
            "billsec": _seconds(leg.billsec_ms),
            "played": leg.played,
            "dtmf_received": leg.dtmf_received,
            "detail": leg.detail,
        }
    )


def call_record(client_id: int, legs: Sequence[CallRow]) -> CallHistoryRecord:
    """Sum up the legs of one call (``legs`` is not empty)."""
    by_kind: dict[str, list[CallRow]] = {}
    for leg in legs:
        by_kind.setdefault(leg.leg, []).append(leg)
    main = by_kind["main"][0] if "main" in by_kind else None
    b_leg = by_kind["b"][0] if "b" in by_kind else None
    a_leg = _best_a_leg(by_kind["a"]) if "a" in by_kind else None
    # the leg that says how the call went: main, else B, else the A leg reported
    primary = main or b_leg or a_leg or legs[0]
    callee = main or b_leg
    caller = a_leg or primary

    bridged = [leg for leg in legs if leg.bridged_at is not None]
    bridged_at = _earliest([leg.bridged_at for leg in bridged])
    bridge_end = _earliest([leg.ended_at for leg in bridged])  # the first to hang up ends it
    partner = next((leg for leg in bridged if leg.leg in ("b", "transfer")), None)
    if partner is None and len(bridged) > 1:
        partner = next((leg for leg in bridged if leg is not caller), None)

    started = min(leg.started_at for leg in legs)
    ended = _latest([leg.ended_at for leg in legs])
    return CallHistoryRecord(
        call_uuid=primary.call_uuid,
        flow="in" if primary.direction == "inbound" else "out",
        from_username=caller.to_number if a_leg is not None else primary.from_number,
        from_screen_name=primary.caller_id_name,
        to_username=callee.to_number if callee is not None else None,
        start_time_gmt=format_seed_time(started) or "",
        answer_time_gmt=format_seed_time(_earliest([leg.answered_at for leg in legs])),
        end_time_gmt=format_seed_time(ended),
        duration=_between(started, ended),
        bridged_duration=_between(bridged_at, bridge_end) if bridged_at is not None else None,
        bridged_time_gmt=format_seed_time(bridged_at),
        bridged_username=partner.to_number if partner is not None else None,
        hangup_cause=primary.hangup_cause,
        hangup_disposition=primary.hangup_disposition,
        result=primary.outcome,
        task_id=next((leg.task_id for leg in legs if leg.task_id is not None), None),
        attempt=next((leg.attempt for leg in legs if leg.attempt is not None), None),
        client_owner_id=client_id,
        application=_application(legs),
        cdr=[cdr_leg(leg) for leg in legs],
    )
