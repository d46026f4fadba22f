"""What routes depend on: the store, clock, storage and settings of the app, and the client a
bearer token speaks for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ringback.api.errors import ApiError
from ringback.api.limits import LoginLimiter, SecretChecker
from ringback.clock import Clock
from ringback.config import Settings
from ringback.domain.rows import TokenOwner
from ringback.service import ClientService, TaskService, token_digest
from ringback.storage import Storage
from ringback.store import Store


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_service(request: Request) -> TaskService:
    return TaskService(get_store(request), get_clock(request), get_storage(request))


StoreDep = Annotated[Store, Depends(get_store)]
ClockDep = Annotated[Clock, Depends(get_clock)]
StorageDep = Annotated[Storage, Depends(get_storage)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[TaskService, Depends(get_service)]

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="A token from POST /oauth/token")


__all__ = ["token_digest"]  # also here: it was defined here first


def get_clients(request: Request) -> ClientService:
    """The client service, checking secrets through the app's bounded :class:`SecretChecker`."""
    checker: SecretChecker = request.app.state.secret_checker
    return ClientService(get_store(request), get_clock(request), checker.verify)


def get_login_limiter(request: Request) -> LoginLimiter:
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


ClientsDep = Annotated[ClientService, Depends(get_clients)]
LimiterDep = Annotated[LoginLimiter, Depends(get_login_limiter)]


async def current_client(
    client_id: Annotated[int, Path(ge=1, description="Your client id")],
    store: StoreDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> int:
    """The path's client id, once the bearer token is shown to belong to it.

    No token or a bad one: 401. A valid token of another client: 404, as if the client did not
    exist (ids of other clients are not disclosed).
    """
    owner = await _bearer_owner(credentials, lambda digest: store.token_client(digest, clock.now()))
    if owner != client_id:
        raise ApiError(404, "not_found", f"no client {client_id}")
    return client_id


CurrentClient = Annotated[int, Depends(current_client)]


async def token_owner(
    store: StoreDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenOwner:
    """Who the bearer token speaks for (routes under ``/oauth/clients/self``)."""
    return await _bearer_owner(credentials, lambda digest: store.token_owner(digest, clock.now()))


async def _bearer_owner(
    credentials: HTTPAuthorizationCredentials | None,
    lookup: Callable[[str], Awaitable[T | None]],
) -> T:
    """Whom the bearer token belongs to, by ``lookup`` of its digest; 401 without one."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiError(
            401, "unauthorized", "send 'Authorization: Bearer <token>'", headers=challenge
        )
    owner = await lookup(token_digest(credentials.credentials))
    if owner is None:
        raise ApiError(
            401, "invalid_token", "the token is unknown or expired: get a new one",
            headers=challenge,
        )  # fmt: skip
    return owner


TokenOwnerDep = Annotated[TokenOwner, Depends(token_owner)]
