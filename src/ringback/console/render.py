"""Rendering the console's pages: the Jinja2 templates, the filters they use, the error page,
and :class:`ConsoleRoute`, which turns what a page's handler raises into an HTML answer (the
API's handlers answer JSON)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from ringback.console.assets import TEMPLATES, static_url
from ringback.console.session import CsrfRefused, Session, Sessions, SignInNeeded, check_csrf
from ringback.domain.rows import Conflict, InvalidInput, NotFound
from ringback.service import Services
from ringback.service.tasks import SEARCH_WINDOW

templates = Jinja2Templates(directory=TEMPLATES)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


templates.env.filters["when"] = _when
templates.env.filters["percent"] = _percent
templates.env.globals["static"] = static_url
#: a name or number search of the task list reads the newest this many tasks (the page says so)
templates.env.globals["search_window"] = f"{SEARCH_WINDOW:,}"


class Refused(Protocol):
    """What a login limiter says when it refuses an attempt (``api/limits.py: Refused``)."""

    field: str
    retry_after_s: int


class LoginLimiter(Protocol):
    """The API's per-client_id and per-address limit of failed secret checks, shared with the
    console's sign-in (``app.state.login_limiter``)."""

    def begin(self, client_key: str, address: str) -> Refused | None: ...

    def succeeded(self, client_key: str, address: str) -> None: ...


class Console:
    """What the pages share: the services, the sessions, the sign-in limits."""

    def __init__(
        self,
        services: Services,
        sessions: Sessions,
        limiter: LoginLimiter,
        *,
        busy: tuple[type[Exception], ...],
        address_key: Callable[[str | None], str],
    ) -> None:
        self.services = services
        self.sessions = sessions
        self.limiter = limiter
        self.busy = busy
        self.address_key = address_key

    @staticmethod
    def of(request: Request) -> Console:
        console: Console = request.app.state.console
        return console

    async def session(self, request: Request) -> Session:
        return await self.sessions.session(request, self.services.clients)


async def _acting(request: Request) -> tuple[Console, Session]:
    console = Console.of(request)
    session = await console.session(request)
    await check_csrf(request, session.csrf)
    return console, session


#: a form that changes something: the console and the session, its CSRF token checked
Acting = Annotated[tuple[Console, Session], Depends(_acting)]


def page(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    session: Session | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The template rendered with ``context``, the session (for the menu and the CSRF token)."""
    values = {"session": session, "csrf": session.csrf if session else "", **(context or {})}
    response = templates.TemplateResponse(request, template, values, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(
    request: Request, status_code: int, message: str, problems: Sequence[str] = ()
) -> HTMLResponse:
    """The error page (or, for htmx, the error fragment) with the reason."""
    template = "_error.html" if request.headers.get("HX-Request") else "error.html"
    return page(
        request, template, {"status": status_code, "message": message, "problems": problems},
        status_code=status_code,
    )  # fmt: skip


def problems_of(exc: InvalidInput) -> list[str]:
    """An InvalidInput's details as lines: ``where: what``."""
    out = []
    for detail in exc.details:
        where = ".".join(str(part) for part in detail.get("loc", []))
        out.append(f"{where}: {detail.get('msg', '')}" if where else str(detail.get("msg", "")))
    return out


def signin_redirect(request: Request) -> Response:
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Redirect": "/ui/signin"})
    return RedirectResponse("/ui/signin", status_code=303)


class ConsoleRoute(APIRoute):
    """A page route: what its handler raises becomes an HTML answer (sign-in, 403, 404, 409,
    422 with the reason) instead of the API's JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInNeeded:
                return signin_redirect(request)
            except CsrfRefused:
                return error_page(
                    request, 403, "refused: the form is missing its CSRF token (reload the page)"
                )
            except NotFound as exc:
                return error_page(request, 404, str(exc) or "not found")
            except Conflict as exc:
                return error_page(request, 409, str(exc))
            except InvalidInput as exc:
                return error_page(request, 422, exc.message, problems_of(exc))
            except RequestValidationError as exc:
                lines = [
                    f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
                ]
                return error_page(request, 422, "invalid input", lines)

        return route
