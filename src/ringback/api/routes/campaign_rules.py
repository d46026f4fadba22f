"""A client's campaign rules: ``/client/{client_id}/frequency_caps/`` (at most N calls to one
number per W seconds, across queues) and ``/client/{client_id}/caller_ids/`` (the caller ids its
calls may show). Both are checked in the write of every call leg, right before it is dialled;
caller ids also when a task or job is added (docs/campaigns.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from ringback.api.campaign_rule_schemas import (
    CallerIdsIn,
    CallerIdsOut,
    FrequencyCapsIn,
    FrequencyCapsOut,
)
from ringback.api.deps import CurrentClient, ServicesDep
from ringback.api.schemas import errors
from ringback.service import CampaignRuleService


def get_rules(services: ServicesDep) -> CampaignRuleService:
    return services.campaign_rules


RulesDep = Annotated[CampaignRuleService, Depends(get_rules)]
router = APIRouter(prefix="/client/{client_id}", tags=["campaign rules"])


@router.get(
    "/frequency_caps/", response_model=FrequencyCapsOut, responses=errors(),
    summary="The client's frequency caps per callee",
)  # fmt: skip
async def get_frequency_caps(client_id: CurrentClient, rules: RulesDep) -> FrequencyCapsOut:
    return FrequencyCapsOut.of(await rules.frequency_caps(client_id))


@router.put(
    "/frequency_caps/", response_model=FrequencyCapsOut, responses=errors(400, 413),
    summary="Replace the client's frequency caps (an empty list: no cap)",
)  # fmt: skip
async def put_frequency_caps(
    body: FrequencyCapsIn, client_id: CurrentClient, rules: RulesDep
) -> FrequencyCapsOut:
    pairs = [(r.max_calls, r.window_seconds) for r in body.rules]
    return FrequencyCapsOut.of(await rules.set_frequency_caps(client_id, pairs))


@router.get(
    "/caller_ids/", response_model=CallerIdsOut, responses=errors(),
    summary="The caller ids the client's calls may show",
)  # fmt: skip
async def get_caller_ids(client_id: CurrentClient, rules: RulesDep) -> CallerIdsOut:
    return CallerIdsOut.of(await rules.caller_ids(client_id))


@router.put(
    "/caller_ids/", response_model=CallerIdsOut, responses=errors(400, 413),
    summary="Replace the client's allowed caller ids (an empty list: any caller id)",
)  # fmt: skip
async def put_caller_ids(
    body: CallerIdsIn, client_id: CurrentClient, rules: RulesDep
) -> CallerIdsOut:
    return CallerIdsOut.of(await rules.set_caller_ids(client_id, body.caller_ids))
