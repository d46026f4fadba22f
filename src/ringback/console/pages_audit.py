"""The audit log page: who created, changed, cancelled or deleted which queue, task, number,
webhook subscription or do-not-call entry, from where (API, console, CLI, IVR) and when,
newest first, filtered by kind of object and action, paged by key. Read-only: nothing on the
page changes the log."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from ringback.console.render import Console, ConsoleRoute, page

router = APIRouter(prefix="/ui/audit", route_class=ConsoleRoute, include_in_schema=False)
PAGE_SIZE = 50
OBJECT_TYPES = ("queue", "task", "number", "webhook", "suppression")
ACTIONS = ("created", "changed", "cancelled", "deleted")


class AuditQuery(BaseModel):
    """The page's filters, from the query string."""

    object_type: str = Field(default="", pattern="^(|" + "|".join(OBJECT_TYPES) + ")$")
    action: str = Field(default="", pattern="^(|" + "|".join(ACTIONS) + ")$")
    object_id: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9+._:-]*$")
    before: int | None = Field(default=None, ge=1, le=2**63 - 1)


def summary_text(summary: dict[str, Any]) -> str:
    """The entry's summary as one short line: ``key=value`` pairs, values as JSON."""
    pairs = (f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in summary.items())
    return ", ".join(pairs)


@router.get("", response_class=HTMLResponse)
async def audit_page(request: Request, query: Annotated[AuditQuery, Query()]) -> Response:
    console = Console.of(request)
    session = await console.session(request)
    rows, next_before = await console.services.audit.page(
        session.client_id, object_type=query.object_type or None, action=query.action or None,
        object_id=query.object_id or None, before_id=query.before, limit=PAGE_SIZE,
    )  # fmt: skip
    context = {
        "entries": [(row, summary_text(row.summary)) for row in rows], "query": query,
        "next_before": next_before, "object_types": OBJECT_TYPES, "actions": ACTIONS,
    }  # fmt: skip
    return page(request, "audit.html", context, session=session)
