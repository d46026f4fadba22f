"""Signing in and out, the redirects to the console, and its 404 page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from ringback.console.render import Console, ConsoleRoute, error_page, page
from ringback.console.session import (
    SIGNIN_COOKIE,
    Sessions,
    SignInNeeded,
    check_csrf,
    keep_signin_token,
    signin_token,
)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
#: the console's 404 page: included after every other page
fallback = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
#: the lengths ``POST /oauth/token`` accepts
MAX_KEY, MAX_SECRET = 200, 1000


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/queues", status_code=307)


@router.get("/ui")
@router.get("/ui/")
async def home() -> RedirectResponse:
    return RedirectResponse("/ui/queues", status_code=307)


def _signin_form(
    request: Request, *, error: str = "", client_id: str = "", status_code: int = 200
) -> HTMLResponse:
    value = signin_token(request)
    response = page(
        request, "signin.html", {"error": error, "client_id": client_id, "signin_csrf": value},
        status_code=status_code,
    )  # fmt: skip
    keep_signin_token(response, request, value)
    return response


@router.get("/ui/signin", response_class=HTMLResponse)
async def signin_page(request: Request) -> Response:
    return _signin_form(request)


@router.post("/ui/signin", response_class=HTMLResponse)
async def signin(
    request: Request,
    client_id: Annotated[str, Form(max_length=MAX_KEY)] = "",
    client_secret: Annotated[str, Form(max_length=MAX_SECRET)] = "",
) -> Response:
    """Check the client's pair (as ``POST /oauth/token`` does, within the same limits)."""
    await check_csrf(request, request.cookies.get(SIGNIN_COOKIE, ""))
    console = Console.of(request)
    key, secret = client_id.strip(), client_secret.strip()
    if not key or not secret or "\x00" in key + secret:
        return _signin_form(
            request, error="enter your client_id and client_secret", client_id=key,
            status_code=400,
        )  # fmt: skip
    address = console.address_key(request.client.host if request.client else None)
    refused = console.limiter.begin(key, address)
    if refused is not None:
        return _signin_form(
            request, client_id=key, status_code=429,
            error=f"too many failed attempts: try again in {refused.retry_after_s} s",
        )  # fmt: skip
    clients = console.services.clients
    credential = None
    checked = False
    try:
        credential = await clients.authenticate(key, secret)
        checked = True
    except console.busy:
        return _signin_form(
            request, client_id=key, status_code=503,
            error="too many sign-ins under way: try again in a second",
        )  # fmt: skip
    finally:
        if credential is not None or not checked:  # only a failed check spends the tokens
            console.limiter.succeeded(key, address)
    if credential is None:
        return _signin_form(
            request, client_id=key, status_code=401,
            error="unknown client_id or wrong client_secret",
        )  # fmt: skip
    token = await clients.issue_token(credential)
    response = RedirectResponse("/ui/queues", status_code=303)
    console.sessions.set_session(response, request, credential.client_id, token)
    return response


@router.post("/ui/signout")
async def signout(request: Request) -> Response:
    console = Console.of(request)
    try:
        session = await console.session(request)
    except SignInNeeded:
        session = None
    if session is not None:
        await check_csrf(request, session.csrf)
        await console.services.clients.revoke_token(session.token)
    response = RedirectResponse("/ui/signin", status_code=303)
    Sessions.clear(response)
    return response


@fallback.api_route("/ui/{rest:path}", methods=["GET", "POST"])
async def not_found(request: Request, rest: str) -> Response:
    """Any other page of the console: 404, as a page (after the sign-in, which tells nothing
    of what exists)."""
    await Console.of(request).session(request)
    return error_page(request, 404, f"no page /ui/{rest}")
