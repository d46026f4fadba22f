"""Signing in to the console: a client's OAuth2 client-credentials pair, checked by the
application layer (``ClientService.authenticate``, as ``POST /oauth/token`` checks it), gives
an API token (``ClientService.issue_token``, an hour); the console keeps it in a signed cookie.

The cookie is HttpOnly, SameSite=Strict, limited to ``/ui`` (Secure over HTTPS), and holds
``<client id>.<token>``; every page asks the application layer whose the token is (an unknown,
expired or revoked token, or a disabled or rotated credential, signs the browser out), so the
cookie needs no signature of its own: nothing in it is trusted before the store vouches for it.
Every POST carries a CSRF token: an HMAC keyed by the session's token (a form field ``csrf`` or
the header ``X-CSRF-Token``), which only the browser holding the cookie can know; the sign-in
form, before any session, a random value that must match its own cookie (double submit).

No key lives in the process: a restart of ``serve``, or another API process or host, keeps
the browser signed in. Signing out revokes the token in the store.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response

from ringback.domain.audit import Actor
from ringback.domain.digits import ascii_digits
from ringback.service import ClientService
from ringback.service.audit import declare_actor

COOKIE = "rb_console"
SIGNIN_COOKIE = "rb_signin"
PATH = "/ui"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


class SignInNeeded(Exception):
    """No valid session: the page answers with the sign-in page (303 to it)."""


class CsrfRefused(Exception):
    """A POST without the session's CSRF token: refused (403)."""


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: the client it acts for, its API token and the CSRF token."""

    client_id: int
    token: str
    csrf: str


class Sessions:
    """Writes and reads the session cookie; checks CSRF tokens."""

    @staticmethod
    def cookie_value(client_id: int, token: str) -> str:
        return f"{client_id}.{token}"

    @staticmethod
    def csrf_of(token: str) -> str:
        return hmac.new(token.encode(), b"ringback console csrf", hashlib.sha256).hexdigest()

    async def session(self, request: Request, clients: ClientService) -> Session:
        """The request's session; SignInNeeded without a valid one."""
        raw = request.cookies.get(COOKIE, "")
        client_text, _, token = raw.partition(".")
        if not ascii_digits(client_text) or not token:
            raise SignInNeeded
        client_id = int(client_text)
        owner = await clients.owner_of_token(token)
        if owner is None or owner.client_id != client_id:
            raise SignInNeeded  # expired, or its credential was disabled or rotated
        declare_actor(Actor(client_id, "console", owner.credential_id))  # the audit log
        return Session(client_id, token, self.csrf_of(token))

    def set_session(self, response: Response, request: Request, client_id: int, token: str) -> None:
        response.set_cookie(
            COOKIE, self.cookie_value(client_id, token), path=PATH, httponly=True,
            samesite="strict", secure=request.url.scheme == "https",
        )  # fmt: skip
        response.delete_cookie(SIGNIN_COOKIE, path=PATH)

    @staticmethod
    def clear(response: Response) -> None:
        response.delete_cookie(COOKIE, path=PATH)


async def sent_csrf(request: Request) -> str:
    """The CSRF token a POST sent: the header, else the form field."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    form = await request.form()
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else ""


async def check_csrf(request: Request, expected: str) -> None:
    """CsrfRefused unless the POST carries ``expected``."""
    if not expected or not hmac.compare_digest(await sent_csrf(request), expected):
        raise CsrfRefused


def signin_token(request: Request) -> str:
    """The sign-in form's double-submit value: the cookie's, or a new one."""
    return request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(24)


def keep_signin_token(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        SIGNIN_COOKIE, value, path=PATH, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip
