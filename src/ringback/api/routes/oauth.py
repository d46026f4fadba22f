"""``POST /oauth/token``: the OAuth2 client-credentials grant (seed B2); a client's own secret
rotation and signing secret (``/oauth/clients/self/…``)."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qs, unquote

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from ringback.api.deps import ClientsDep, LimiterDep, TokenOwnerDep
from ringback.api.errors import ApiError, ErrorBody
from ringback.api.limits import Busy, LoginLimiter, address_key
from ringback.api.schemas import RotatedOut, TokenOut
from ringback.api.storage_links import API_PREFIX
from ringback.api.webhook_schemas import WebhookSecretOut
from ringback.domain.rows import Credential
from ringback.service import TOKEN_LIFETIME_S, ClientService

router = APIRouter(tags=["auth"])

_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["grant_type", "client_id", "client_secret"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "client_id": {"type": "string", "minLength": 1, "maxLength": 200},
        "client_secret": {"type": "string", "minLength": 1, "maxLength": 1000},
        "scope": {"type": "string"},
    },
}
_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA}},
    }
}


def _bad(error: str, message: str, status: int = 400, **headers: str) -> ApiError:
    return ApiError(status, error, message, headers=headers or None)


def _form(raw: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(raw.decode(), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad("invalid_request", "the body is not a valid form") from exc
    form: dict[str, str] = {}
    for name in _FORM_SCHEMA["properties"]:  # others are ignored (RFC 6749 3.2)
        values = parsed.get(name, [])
        if len(values) > 1:
            raise _bad("invalid_request", f"parameter {name!r} is repeated")
        if values:
            form[name] = values[0]
    return form


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _bad("invalid_request", "malformed Basic authorization") from exc
    key, sep, secret = decoded.partition(":")
    if not sep:
        raise _bad("invalid_request", "malformed Basic authorization")
    return unquote(key), unquote(secret)


def _credentials(request: Request, form: dict[str, str]) -> tuple[str, str, bool]:
    """(client_id, client_secret, sent as HTTP Basic) from the Basic header or the form."""
    basic = _basic(request.headers.get("authorization"))
    if basic is not None and ("client_id" in form or "client_secret" in form):
        raise _bad("invalid_request", "send the credentials once: Basic or form, not both")
    key, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
    if not key or not secret:
        pairs = (("client_id", key), ("client_secret", secret))
        missing = [name for name, value in pairs if not value]
        raise ApiError(
            400, "invalid_request", "client_id and client_secret are required",
            details=[{"loc": ["body", name], "msg": "required"} for name in missing],
        )  # fmt: skip
    return key, secret, basic is not None


async def _form_of(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if raw and content_type != "application/x-www-form-urlencoded":
        raise _bad("invalid_request", "send the body as application/x-www-form-urlencoded")
    return _form(raw)


async def _check_client(
    request: Request, clients: ClientService, limiter: LoginLimiter, key: str, secret: str,
    basic: bool,
) -> Credential:  # fmt: skip
    """The credential, once its secret is checked within the limits (429, 503 or 401 if not)."""
    challenge = {"WWW-Authenticate": 'Basic realm="ringback"'} if basic else {}
    if "\x00" in key + secret or len(key) > 200 or len(secret) > 1000:
        raise _bad("invalid_client", "unknown client or wrong secret", 401, **challenge)
    address = address_key(request.client.host if request.client else None)
    refused = limiter.begin(key, address)
    if refused is not None:
        what = "this client_id" if refused.field == "client_id" else "this address"
        raise ApiError(
            429, "too_many_requests",
            f"too many failed attempts for {what}: try again in {refused.retry_after_s} s",
            details=[{"loc": ["body" if refused.field == "client_id" else "client",
                              refused.field], "msg": "rate limited"}],
            headers={"Retry-After": str(refused.retry_after_s)},
        )  # fmt: skip
    credential: Credential | None = None
    checked = False
    try:
        credential = await clients.authenticate(key, secret)
        checked = True
    except Busy:
        raise ApiError(
            503, "busy", "too many secret checks under way: try again in 1 s",
            headers={"Retry-After": "1"},
        ) from None  # fmt: skip
    finally:
        if credential is not None or not checked:  # only a failed check spends the tokens
            limiter.succeeded(key, address)
    if credential is None:
        raise _bad("invalid_client", "unknown client or wrong secret", 401, **challenge)
    return credential


_LIMITED: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 429: {"model": ErrorBody},
    503: {"model": ErrorBody},
}  # fmt: skip


@router.post(
    "/oauth/token",
    response_model=TokenOut,
    summary="Get an access token (client credentials)",
    openapi_extra=_OPENAPI,
    responses=_LIMITED,
)
async def token(
    request: Request, response: Response, clients: ClientsDep, limiter: LimiterDep
) -> TokenOut:
    """Form body ``grant_type=client_credentials&client_id=…&client_secret=…``, or the
    client id and secret as HTTP Basic credentials. Failed attempts are limited per client_id
    and per address (429 with ``Retry-After``)."""
    form = await _form_of(request)
    grant = form.get("grant_type")
    if not grant:
        raise ApiError(
            400, "invalid_request", "grant_type is missing",
            details=[{"loc": ["body", "grant_type"], "msg": "required"}],
        )  # fmt: skip
    if grant != "client_credentials":
        raise _bad("unsupported_grant_type", f"grant_type {grant!r} is not supported")
    key, secret, basic = _credentials(request, form)
    credential = await _check_client(request, clients, limiter, key, secret, basic)
    access = await clients.issue_token(credential)
    response.headers["Cache-Control"] = "no-store"
    return TokenOut(access_token=access, expires_in=TOKEN_LIFETIME_S)


@router.post(
    "/oauth/clients/self/rotate",
    response_model=RotatedOut,
    summary="A new client secret (and signing secret); tokens issued before stop working",
    openapi_extra=_OPENAPI,
    responses=_LIMITED,
)
async def rotate_own_secret(
    request: Request, response: Response, clients: ClientsDep, limiter: LimiterDep
) -> RotatedOut:
    """Authenticated with the current ``client_id`` and ``client_secret`` (HTTP Basic or form,
    as for a token; a bearer token is not enough: it could otherwise be turned into a lasting
    secret). The new secret is shown only in this answer."""
    key, secret, basic = _credentials(request, await _form_of(request))
    credential = await _check_client(request, clients, limiter, key, secret, basic)
    rotated = await clients.rotate_secret(credential.key)
    response.headers["Cache-Control"] = "no-store"
    return RotatedOut(
        id=rotated.client_id, client_id=rotated.key, client_secret=rotated.secret,
        secret_version=rotated.secret_version, signing_secret=rotated.signing_secret,
    )  # fmt: skip


class SelfOut(BaseModel):
    """Who the bearer token speaks for."""

    id: int = Field(description="the client's number (in API paths: /api/ver1.0/client/{id})")
    base_path: str = Field(description="the prefix of the client's API routes")


@router.get(
    "/oauth/clients/self",
    response_model=SelfOut,
    summary="The client the token speaks for (its number in API paths)",
    responses={401: {"model": ErrorBody}},
)
async def own_client(owner: TokenOwnerDep) -> SelfOut:
    """What a tool given only a ``client_id`` and ``client_secret`` needs to build the
    client's paths."""
    return SelfOut(id=owner.client_id, base_path=f"{API_PREFIX}/client/{owner.client_id}")


@router.get(
    "/oauth/clients/self/signing_secret",
    response_model=WebhookSecretOut,
    summary="The secret that signs ringback's requests to your servers (IVR and webhooks)",
    responses={401: {"model": ErrorBody}},
)
async def own_signing_secret(
    owner: TokenOwnerDep, clients: ClientsDep, response: Response
) -> WebhookSecretOut:
    """The client's signing secret (made on first use), and the previous one while it still
    signs after a rotation. The same as ``GET …/client/{id}/webhook_secret``."""
    response.headers["Cache-Control"] = "no-store"
    return WebhookSecretOut.of(await clients.signing_key(owner.client_id))
