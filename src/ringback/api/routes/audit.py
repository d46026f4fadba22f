"""The audit log: ``GET /client/{client_id}/audit/``, who created, changed, cancelled or
deleted which queue, task, number, webhook subscription or do-not-call entry, and when
(docs/campaigns.md, "Audit log"). Each client reads its own entries only; pages go by key
(``before_id``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from ringback.api.deps import CurrentClient, ServicesDep
from ringback.api.schemas import MAX_ID, errors, parse_time_param
from ringback.domain.audit import AuditRow
from ringback.domain.export import iso_utc
from ringback.service.audit import MAX_PAGE

router = APIRouter(prefix="/client/{client_id}/audit", tags=["audit"])
ObjectType = Literal["queue", "task", "number", "webhook", "suppression"]
Action = Literal["created", "changed", "cancelled", "deleted"]
_TIME = "UTC 'YYYY-MM-DD HH:MM:SS' or ISO 8601 with a zone"


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{
                "id": 42, "occurred_at": "2024-05-01T09:00:00Z", "channel": "api",
                "credential_id": 3, "operator": "jane", "action": "cancelled",
                "object_type": "task", "object_id": "1234", "summary": {},
            }]
        }
    )  # fmt: skip

    id: int = Field(description="The entry's id (pages go by it: before_id)")
    occurred_at: str = Field(description="When the change committed, UTC ISO 8601")
    channel: str = Field(description="Where it came from: api, console, cli, ivr or system")
    credential_id: int | None = Field(
        description="The API credential whose token made it (none from the host's CLI)"
    )
    operator: str | None = Field(
        description="The operator's name: the API's Ringback-Operator header, the CLI's login"
    )
    action: str = Field(description="created, changed, cancelled or deleted")
    object_type: str = Field(description="queue, task, number, webhook or suppression")
    object_id: str | None = Field(
        description="The object's id (a number's own digits; a batch: its first task)"
    )
    summary: dict[str, Any] = Field(
        description="What changed, in short; secrets and URL queries are never kept"
    )

    @classmethod
    def of(cls, row: AuditRow) -> AuditEntryOut:
        return cls(
            id=row.id, occurred_at=iso_utc(row.occurred_at), channel=row.channel,
            credential_id=row.credential_id, operator=row.operator, action=row.action,
            object_type=row.object_type, object_id=row.object_id, summary=row.summary,
        )  # fmt: skip


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut] = Field(description="The entries, newest first")
    next_before_id: int | None = Field(
        description="Pass as before_id for the next (older) page; null: this is the last"
    )


@router.get(
    "/", response_model=AuditPageOut, responses=errors(),
    summary="Read the audit log (newest first, your client's own entries)",
)  # fmt: skip
async def list_audit(
    client_id: CurrentClient,
    services: ServicesDep,
    object_type: Annotated[
        ObjectType | None, Query(description="Entries of this kind of object")
    ] = None,
    object_id: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[^\x00]*$",
            description="Entries of this object (with object_type)",
        ),
    ] = None,
    action: Annotated[Action | None, Query(description="Entries of this action")] = None,
    since: Annotated[str | None, Query(description=f"At or after this time; {_TIME}")] = None,
    until: Annotated[str | None, Query(description=f"Before this time; {_TIME}")] = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Entries older than this id (paging)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Entries per page")] = 100,
) -> AuditPageOut:
    rows, next_id = await services.audit.page(
        client_id, object_type=object_type, object_id=object_id, action=action,
        since=parse_time_param("since", since), until=parse_time_param("until", until),
        before_id=before_id, limit=limit,
    )  # fmt: skip
    return AuditPageOut(entries=[AuditEntryOut.of(r) for r in rows], next_before_id=next_id)
