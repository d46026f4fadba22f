"""The sip dialer's trunks as this process sees them: ``GET /client/{client_id}/sip/trunks``.

Every process of ``ringback serve`` runs its own worker, SIP user agent and OPTIONS pings, and
answers from them (the trunks' state is not stored: each process pings every trunk itself, so
any of them can say whether a trunk is up). A service on the simulator has no trunks: 404.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from ringback.api.deps import CurrentClient
from ringback.api.errors import ApiError
from ringback.api.schemas import errors

router = APIRouter(prefix="/client/{client_id}/sip", tags=["sip"])

#: what ``ringback serve`` puts in ``app.state.sip_trunks``: the trunks' state, read now
TrunkReport = Callable[[], list[dict[str, Any]]]


class SipTrunkOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "carrier-a", "state": "up", "latency_ms": 12.5,
        "checked_at": "2026-01-05T12:00:00Z", "last_error": None, "calls": 3,
        "max_concurrent_calls": 30, "paused_until": None, "placed": 1200, "failed_over": 4,
    }]})  # fmt: skip

    name: str = Field(description="the trunk's name in the trunks file ('default' without one)")
    state: str = Field(
        description="up or down by the last OPTIONS ping; unknown: not pinged (yet, or "
        "options_interval_s is 0)",
        examples=["up"],
    )
    latency_ms: float | None = Field(
        description="round trip of the last answered OPTIONS ping, ms (null: none)",
        examples=[12.5],
    )
    checked_at: datetime | None = Field(description="when the last ping ended (UTC)")
    last_error: str | None = Field(description="why the trunk is down, if it is")
    calls: int = Field(description="calls on the trunk now, in this process", examples=[3])
    max_concurrent_calls: int | None = Field(
        description="the trunk's limit per process (null: none)", examples=[30]
    )
    paused_until: datetime | None = Field(
        description="no new call until then (the trunk sent 429/503 with Retry-After)"
    )
    placed: int = Field(description="calls placed on the trunk by this process", examples=[1200])
    failed_over: int = Field(
        description="calls of this process that left the trunk for the next one (503, 408, "
        "429, transport errors)",
        examples=[4],
    )


class SipTrunkListOut(BaseModel):
    trunks: list[SipTrunkOut] = Field(description="in the trunks file's order")


@router.get(
    "/trunks", response_model=SipTrunkListOut, responses=errors(),
    summary="The SIP trunks' state (OPTIONS pings, calls, pauses) in the answering process",
)  # fmt: skip
async def list_trunks(request: Request, client_id: CurrentClient) -> SipTrunkListOut:
    report: TrunkReport | None = getattr(request.app.state, "sip_trunks", None)
    if report is None:
        raise ApiError(404, "not_found", "no SIP trunks: this service does not use the sip dialer")
    return SipTrunkListOut(trunks=[SipTrunkOut(**entry) for entry in report()])
