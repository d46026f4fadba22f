"""What routes depend on: the application layer's services, the clock, storage and settings of
the app, and the client a bearer token speaks for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ringback.api.errors import ApiError
from ringback.api.limits import LoginLimiter
from ringback.client_files import Storage
from ringback.clock import Clock
from ringback.config import Settings
from ringback.domain.audit import Actor
from ringback.domain.rows import TokenOwner
from ringback.service import (
    CallHistory,
    ClientService,
    NumberService,
    QueueService,
    Services,
    StoredResponses,
    TaskService,
    WebhookService,
)
from ringback.service.audit import declare_actor


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ServicesDep = Annotated[Services, Depends(get_services)]
ClockDep = Annotated[Clock, Depends(get_clock)]
StorageDep = Annotated[Storage, Depends(get_storage)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_tasks(services: ServicesDep) -> TaskService:
    return services.tasks


def get_queues(services: ServicesDep) -> QueueService:
    return services.queues


def get_history(services: ServicesDep) -> CallHistory:
    return services.history


def get_numbers(services: ServicesDep) -> NumberService:
    return services.numbers


def get_webhooks(services: ServicesDep) -> WebhookService:
    return services.webhooks


def get_responses(services: ServicesDep) -> StoredResponses:
    return services.responses


TasksDep = Annotated[TaskService, Depends(get_tasks)]
QueuesDep = Annotated[QueueService, Depends(get_queues)]
HistoryDep = Annotated[CallHistory, Depends(get_history)]
NumbersDep = Annotated[NumberService, Depends(get_numbers)]
WebhooksDep = Annotated[WebhookService, Depends(get_webhooks)]
ResponsesDep = Annotated[StoredResponses, Depends(get_responses)]

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="A token from POST /oauth/token")


def get_clients(services: ServicesDep) -> ClientService:
    """The client service; it checks secrets through the app's bounded
    :class:`~ringback.api.limits.SecretChecker`."""
    return services.clients


def get_login_limiter(request: Request) -> LoginLimiter:
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


ClientsDep = Annotated[ClientService, Depends(get_clients)]
LimiterDep = Annotated[LoginLimiter, Depends(get_login_limiter)]


async def current_client(
    client_id: Annotated[int, Path(ge=1, description="Your client id")],
    clients: ClientsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    operator: Annotated[
        str | None,
        Header(
            alias="Ringback-Operator",
            max_length=100,
            description="Who operates this client (a person's name), kept in the audit log "
            "beside the token's credential; not checked",
        ),
    ] = None,
) -> int:
    """The path's client id, once the bearer token is shown to belong to it.

    No token or a bad one: 401. A valid token of another client: 404, as if the client did not
    exist (ids of other clients are not disclosed).
    """
    owner = await _bearer_owner(credentials, clients.owner_of_token)
    if owner.client_id != client_id:
        raise ApiError(404, "not_found", f"no client {client_id}")
    # the changes this request makes are recorded as this credential's (the audit log)
    declare_actor(Actor(client_id, "api", owner.credential_id, operator))
    return client_id


CurrentClient = Annotated[int, Depends(current_client)]


async def token_owner(
    clients: ClientsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenOwner:
    """Who the bearer token speaks for (routes under ``/oauth/clients/self``)."""
    return await _bearer_owner(credentials, clients.owner_of_token)


async def _bearer_owner(
    credentials: HTTPAuthorizationCredentials | None,
    lookup: Callable[[str], Awaitable[T | None]],
) -> T:
    """Whom the bearer token belongs to, by ``lookup`` of the token; 401 without one."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiError(
            401, "unauthorized", "send 'Authorization: Bearer <token>'", headers=challenge
        )
    owner = await lookup(credentials.credentials)
    if owner is None:
        raise ApiError(
            401, "invalid_token", "the token is unknown or expired: get a new one",
            headers=challenge,
        )  # fmt: skip
    return owner


TokenOwnerDep = Annotated[TokenOwner, Depends(token_owner)]
