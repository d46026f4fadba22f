"""``/client/{client_id}/call_history/``: the client's calls, one record per call (seed B7).

This route parses the request, asks ``ringback.service.history`` (which assembles a call's legs
into its record) and serializes the answer with the models of ``api/history_schemas.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam

from ringback.api.deps import CurrentClient, HistoryDep
from ringback.api.errors import ApiError, ErrorBody
from ringback.api.history_schemas import CallHistoryPage, CallHistoryRecord
from ringback.api.storage_links import fax_view
from ringback.domain.rows import CallRow
from ringback.domain.task_rules import parse_utc_time
from ringback.service.history import call_record as history_record


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
#: the window of the call history (its list and its CSV export): calls started in [start, end)
StartQuery = Annotated[
    str | None,
    Query(
        description=f"Calls that started at or after this time. {_TIME_HELP}",
        json_schema_extra={"format": "date-time"},
    ),
]
EndQuery = Annotated[
    str | None,
    Query(
        description=f"Calls that started before this time. {_TIME_HELP}",
        json_schema_extra={"format": "date-time"},
    ),
]


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
    history: HistoryDep,
    start: StartQuery = None,
    end: EndQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Calls per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Calls to skip")] = 0,
) -> CallHistoryPage:
    """The client's calls that started in [start, end), oldest first.

    A call is counted once even if its legs started at different times: by its first leg
    that started in the period."""
    calls, total = await history.page(
        client_id,
        start=_time_param("start", start),
        end=_time_param("end", end),
        limit=limit,
        offset=offset,
    )
    return CallHistoryPage.model_validate(
        {"calls": [_linked(call) for call in calls], "total": total, "limit": limit,
         "offset": offset}
    )  # fmt: skip


@router.get(
    "/client/{client_id}/call_history/{call_uuid}",
    response_model=CallHistoryRecord,
    summary="Get one call",
    responses=_ERRORS,
)
async def get_call(
    client_id: CurrentClient,
    history: HistoryDep,
    call_uuid: Annotated[str, PathParam(description="The call's unique id")],
) -> CallHistoryRecord:
    if "\x00" in call_uuid:  # cannot be stored, and PostgreSQL refuses it in a query
        raise ApiError(404, "not_found", "no such call")
    call = await history.one(client_id, call_uuid)
    if call is None:
        raise ApiError(404, "not_found", f"no call {call_uuid}")
    return CallHistoryRecord.model_validate(_linked(call))


def _linked(call: dict[str, Any]) -> dict[str, Any]:
    """A call-history record whose legs' faxes have their download links."""
    owner = call["client_owner_id"]
    return {**call, "cdr": [{**leg, "fax": fax_view(owner, leg["fax"])} for leg in call["cdr"]]}


def call_record(client_id: int, legs: Sequence[CallRow]) -> CallHistoryRecord:
    """The call-history record of one call's legs (``legs`` is not empty)."""
    return CallHistoryRecord.model_validate(_linked(history_record(client_id, legs)))
