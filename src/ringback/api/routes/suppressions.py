"""Do-not-call lists: ``/client/{client_id}/suppressions/``: add one or many, import a CSV
file, list, check a number, remove. Every call leg is checked against them right before it is
dialled (docs/campaigns.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from ringback.api.deps import CurrentClient, ServicesDep
from ringback.api.errors import ApiError
from ringback.api.idempotency import IdempotencyDep
from ringback.api.schemas import MAX_ID, errors, parse_time_param
from ringback.api.suppression_schemas import (
    LIST_PATTERN,
    AddedOut,
    CheckOut,
    RemovedOut,
    SuppressionBatchIn,
    SuppressionListOut,
    SuppressionOut,
)
from ringback.domain.suppression import DEFAULT_LIST
from ringback.service import SuppressionService


def get_suppressions(services: ServicesDep) -> SuppressionService:
    return services.suppressions


SuppressionsDep = Annotated[SuppressionService, Depends(get_suppressions)]
router = APIRouter(prefix="/client/{client_id}/suppressions", tags=["suppressions"])
ListName = Annotated[
    str | None, Query(alias="list", pattern=LIST_PATTERN, description="a list name")
]
_NUMBER = r"^\+?[0-9 ().-]{1,40}\*?$"


@router.post(
    "/", status_code=201, response_model=AddedOut, responses=errors(400, 409, 413),
    summary="Add entries (1 to 10,000; all or nothing)",
)  # fmt: skip
async def add_suppressions(
    body: SuppressionBatchIn, client_id: CurrentClient, lists: SuppressionsDep,
    idem: IdempotencyDep,
) -> Response:  # fmt: skip
    if (replay := await idem.replay()) is not None:
        return replay
    added = await lists.add(client_id, [item.entry() for item in body.entries])
    return await idem.respond(201, {"added": added})


@router.post(
    "/import", status_code=201, response_model=AddedOut, responses=errors(400, 409, 413),
    summary="Import a CSV file (the request body, text/csv, up to 16 MiB)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)  # fmt: skip
async def import_suppressions(
    request: Request, client_id: CurrentClient, lists: SuppressionsDep, idem: IdempotencyDep,
    list_name: Annotated[str, Query(alias="list", pattern=LIST_PATTERN)] = DEFAULT_LIST,
    source: Annotated[str, Query(max_length=200, pattern=r"^[^\x00]*$")] = "",
    expires_at: Annotated[str | None, Query(description="UTC time; must be in the future")] = None,
) -> Response:  # fmt: skip
    """One entry per line: ``number[,list[,source[,expires_at]]]`` (a prefix ends with ``*``),
    or the columns a header line names (``number,list,source,expires_at``); empty cells take
    the query's defaults. The file is checked whole first: any bad line answers 422 naming the
    lines, and nothing is added."""
    if (replay := await idem.replay()) is not None:
        return replay
    expiry = parse_time_param("expires_at", expires_at)
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(
            422, "invalid_input", "the file is not UTF-8 text",
            [{"loc": ["body"], "msg": "not UTF-8"}],
        ) from None  # fmt: skip
    if "\x00" in text:
        raise ApiError(422, "invalid_input", "NUL in the file", [{"loc": ["body"], "msg": "NUL"}])
    added = await lists.import_csv(
        client_id, text.splitlines(), list_name=list_name, source=source, expires_at=expiry
    )
    return await idem.respond(201, {"added": added})


@router.get("/", response_model=SuppressionListOut, responses=errors(), summary="List entries")
async def list_suppressions(
    client_id: CurrentClient, lists: SuppressionsDep, list_name: ListName = None,
    number: Annotated[str | None, Query(pattern=r"^\+?[0-9]{1,20}$",
                                        description="entries starting with these digits")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> SuppressionListOut:  # fmt: skip
    rows, total = await lists.list(
        client_id, list_name=list_name, number=number, limit=limit, offset=offset
    )
    return SuppressionListOut(
        suppressions=[SuppressionOut.of(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/check", response_model=CheckOut, responses=errors(),
    summary="Whether a call to a number would be refused now, and by which entry",
)  # fmt: skip
async def check_number(
    client_id: CurrentClient, lists: SuppressionsDep,
    number: Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[^\x00]*$")],
) -> CheckOut:  # fmt: skip
    found = await lists.check(client_id, number)
    if found is None:
        return CheckOut(number=number, suppressed=False)
    return CheckOut(
        number=number, suppressed=True, list=found.list_name, source=found.source,
        entry=found.number + ("*" if found.prefix else ""), reason=found.reason(),
    )  # fmt: skip


@router.delete(
    "/", response_model=RemovedOut, responses=errors(),
    summary="Remove the entries of a number or prefix (on one list), or a whole list",
)  # fmt: skip
async def remove_matching(
    client_id: CurrentClient, lists: SuppressionsDep, list_name: ListName = None,
    number: Annotated[str | None, Query(pattern=_NUMBER, description="prefix: ends in *")] = None,
) -> RemovedOut:  # fmt: skip
    if number is None and list_name is None:
        raise ApiError(
            422, "invalid_input", "give number, list or both",
            [{"loc": ["query", "number"], "msg": "give number, list or both"}],
        )  # fmt: skip
    removed = await lists.remove_matching(client_id, number=number, list_name=list_name)
    return RemovedOut(removed=removed)


@router.delete(
    "/{entry_id}", status_code=204, response_class=Response, responses=errors(),
    summary="Remove one entry",
)  # fmt: skip
async def remove_one(
    client_id: CurrentClient, lists: SuppressionsDep,
    entry_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:  # fmt: skip
    await lists.remove(client_id, entry_id)
    return Response(status_code=204)
