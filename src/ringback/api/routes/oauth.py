"""``POST /oauth/token``: the OAuth2 client-credentials grant (seed B2)."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qs, unquote

from fastapi import APIRouter, Request, Response

from ringback.api import auth
from ringback.api.deps import ClockDep, StoreDep
from ringback.api.errors import ApiError, ErrorBody
from ringback.api.schemas import TokenOut

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


@router.post(
    "/oauth/token",
    response_model=TokenOut,
    summary="Get an access token (client credentials)",
    openapi_extra=_OPENAPI,
    responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}},
)
async def token(request: Request, response: Response, store: StoreDep, clock: ClockDep) -> TokenOut:
    """Form body ``grant_type=client_credentials&client_id=…&client_secret=…``, or the
    client id and secret as HTTP Basic credentials."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if raw and content_type != "application/x-www-form-urlencoded":
        raise _bad("invalid_request", "send the body as application/x-www-form-urlencoded")
    form = _form(raw)
    grant = form.get("grant_type")
    if not grant:
        raise _bad("invalid_request", "grant_type is missing")
    if grant != "client_credentials":
        raise _bad("unsupported_grant_type", f"grant_type {grant!r} is not supported")
    basic = _basic(request.headers.get("authorization"))
    if basic is not None and ("client_id" in form or "client_secret" in form):
        raise _bad("invalid_request", "send the credentials once: Basic or form, not both")
    key, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
    if not key or not secret:
        raise _bad("invalid_request", "client_id and client_secret are required")
    if "\x00" in key + secret or len(key) > 200 or len(secret) > 1000:
        raise _bad("invalid_client", "unknown client or wrong secret", 401)
    client_id = await auth.authenticate(store, key, secret)
    if client_id is None:
        challenge = {"WWW-Authenticate": 'Basic realm="ringback"'} if basic else {}
        raise _bad("invalid_client", "unknown client or wrong secret", 401, **challenge)
    access = await auth.issue_token(store, client_id, clock.now())
    response.headers["Cache-Control"] = "no-store"
    return TokenOut(access_token=access, expires_in=auth.TOKEN_LIFETIME_S)
