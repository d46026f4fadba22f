"""Webhooks: subscriptions (``/webhooks/``), deliveries (``/webhook_deliveries/``) and the
client's signing secret for seed and job URLs (``/webhook_secret``)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Response

from ringback.api.deps import ClientsDep, CurrentClient, SettingsDep, WebhooksDep
from ringback.api.errors import ApiError, check_body_url
from ringback.api.idempotency import IdempotencyDep
from ringback.api.schemas import MAX_ID, errors, reject_unstorable
from ringback.api.webhook_schemas import (
    DeliveryListOut,
    DeliveryOut,
    DeliveryStatus,
    WebhookCreate,
    WebhookListOut,
    WebhookOut,
    WebhookSecretOut,
    WebhookUpdate,
)
from ringback.config import Settings

router = APIRouter(prefix="/client/{client_id}", tags=["webhooks"])
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="The webhook (subscription) id")]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _check_url(url: str, settings: Settings) -> None:
    check_body_url("url", url, allow_private=settings.webhook_allow_private)


@router.post(
    "/webhooks/", status_code=201, response_model=WebhookOut, responses=errors(400, 409, 413),
    summary="Subscribe a URL to the client's task and call events",
)  # fmt: skip
async def create_webhook(
    body: WebhookCreate, client_id: CurrentClient, hooks: WebhooksDep, settings: SettingsDep,
    idem: IdempotencyDep,
) -> Response:  # fmt: skip
    if (replay := await idem.replay()) is not None:
        return replay
    reject_unstorable(body.model_dump())
    _check_url(body.url, settings)
    row = await hooks.subscribe(
        client_id, url=body.url, events=list(body.events), secret=body.secret,
        active=body.active, description=body.description,
    )  # fmt: skip
    return await idem.respond(201, WebhookOut.of(row).model_dump(mode="json"))


@router.get("/webhooks/", response_model=WebhookListOut, responses=errors(), summary="List")
async def list_webhooks(client_id: CurrentClient, hooks: WebhooksDep) -> WebhookListOut:
    return WebhookListOut(webhooks=[WebhookOut.of(r) for r in await hooks.subscriptions(client_id)])


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut, responses=errors(), summary="Read")
async def get_webhook(
    webhook_id: WebhookId, client_id: CurrentClient, hooks: WebhooksDep
) -> WebhookOut:
    return WebhookOut.of(await hooks.subscription(client_id, webhook_id))


@router.put(
    "/webhooks/{webhook_id}", response_model=WebhookOut, responses=errors(400, 413),
    summary="Change a webhook (only the fields sent)",
)  # fmt: skip
async def update_webhook(
    webhook_id: WebhookId, body: WebhookUpdate, client_id: CurrentClient, hooks: WebhooksDep,
    settings: SettingsDep,
) -> WebhookOut:  # fmt: skip
    """A new ``secret`` (or ``rotate_secret: true``) keeps the old secret signing too, as a
    second ``v1=``, for 24 hours. ``active: true`` switches a webhook on again after a 410."""
    reject_unstorable(body.model_dump())
    changes: dict[str, Any] = {}
    sent = body.model_fields_set
    for name in ("url", "events", "active", "description", "secret"):
        value = getattr(body, name)
        if name in sent and value is not None:
            changes[name] = list(value) if name == "events" else value
    if body.rotate_secret and "secret" in changes:
        raise ApiError(
            422, "invalid_input", "send either secret or rotate_secret",
            [{"loc": ["body", "rotate_secret"], "msg": "send either secret or rotate_secret"}],
        )  # fmt: skip
    if "url" in changes:
        _check_url(changes["url"], settings)
    row = await hooks.change(client_id, webhook_id, changes, rotate_secret=body.rotate_secret)
    return WebhookOut.of(row)


@router.delete(
    "/webhooks/{webhook_id}", status_code=204, response_class=Response, responses=errors(),
    summary="Delete a webhook (its undelivered events are dropped)",
)  # fmt: skip
async def delete_webhook(
    webhook_id: WebhookId, client_id: CurrentClient, hooks: WebhooksDep
) -> Response:
    await hooks.unsubscribe(client_id, webhook_id)
    return Response(status_code=204)


@router.get(
    "/webhook_deliveries/", response_model=DeliveryListOut, responses=errors(),
    summary="List deliveries (e.g. ?status=dead)",
)  # fmt: skip
async def list_deliveries(
    client_id: CurrentClient,
    hooks: WebhooksDep,
    status: DeliveryStatus | None = None,
    webhook_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    task_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> DeliveryListOut:
    rows, total = await hooks.deliveries(
        client_id, status=status, subscription_id=webhook_id, task_id=task_id, limit=limit,
        offset=offset,
    )  # fmt: skip
    return DeliveryListOut(
        deliveries=[DeliveryOut.of(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/webhook_deliveries/{delivery_id}", response_model=DeliveryOut, responses=errors(),
    summary="Read a delivery, with its body",
)  # fmt: skip
async def get_delivery(
    delivery_id: DeliveryId, client_id: CurrentClient, hooks: WebhooksDep
) -> DeliveryOut:
    row, body = await hooks.delivery(client_id, delivery_id)
    return DeliveryOut.of(row, orjson.loads(body))


@router.post(
    "/webhook_deliveries/{delivery_id}/redeliver", response_model=DeliveryOut,
    responses=errors(409), summary="Send a dead delivery again",
)  # fmt: skip
async def redeliver(
    delivery_id: DeliveryId, client_id: CurrentClient, hooks: WebhooksDep
) -> DeliveryOut:
    """The delivery becomes pending, due now, with a new retry period; 409 unless it is dead."""
    return DeliveryOut.of(await hooks.redeliver(client_id, delivery_id))


@router.get(
    "/webhook_secret", response_model=WebhookSecretOut, responses=errors(),
    summary="The signing secret of the task URLs and job webhooks (made on first use)",
)  # fmt: skip
async def get_webhook_secret(client_id: CurrentClient, clients: ClientsDep) -> WebhookSecretOut:
    return WebhookSecretOut.of(await clients.signing_key(client_id))


@router.post(
    "/webhook_secret/rotate", response_model=WebhookSecretOut, responses=errors(),
    summary="A new signing secret; the old one still signs for 24 hours",
)  # fmt: skip
async def rotate_webhook_secret(client_id: CurrentClient, clients: ClientsDep) -> WebhookSecretOut:
    return WebhookSecretOut.of(await clients.rotate_signing_key(client_id))
