"""The operator console in the browser (issue 15) and the API's documentation pages, served by
``ringback serve`` itself from this package: server-rendered Jinja2 pages under ``/ui`` with a
vendored htmx and one stylesheet, ``/docs`` and ``/redoc`` from vendored Swagger UI and ReDoc.
No CDN: it all works offline. Pages call the application layer (``ringback.service``), never
the store. ``install`` adds it all to the API app."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from ringback.console import (
    pages_audit,
    pages_auth,
    pages_bulk,
    pages_calls,
    pages_dashboard,
    pages_dnc,
    pages_exports,
    pages_numbers,
    pages_queues,
    pages_tasks,
    pages_webhooks,
)
from ringback.console.assets import STATIC, STATIC_URL
from ringback.console.docs import install_docs
from ringback.console.render import Console
from ringback.console.session import Sessions


def install(
    app: FastAPI,
    *,
    busy: tuple[type[Exception], ...],
    address_key: Callable[[str | None], str],
) -> None:
    """Add the console, its static files and the docs pages to ``app``: the API's app, built
    with ``docs_url=None, redoc_url=None``, whose ``state`` holds ``services`` and the
    ``login_limiter`` that sign-ins share with ``POST /oauth/token``. ``busy``: what a secret
    check raises when too many run at once; ``address_key``: a client address's limiter key."""
    app.state.console = Console(
        app.state.services, Sessions(), app.state.login_limiter, busy=busy,
        address_key=address_key,
    )  # fmt: skip
    app.mount(STATIC_URL, StaticFiles(directory=STATIC), name="console-static")
    install_docs(app)
    for router in (
        pages_auth.router, pages_exports.router, pages_queues.router, pages_bulk.router,
        pages_tasks.router,
        pages_calls.router,
        pages_webhooks.router, pages_numbers.router, pages_dnc.router, pages_audit.router,
        pages_dashboard.router,
        pages_auth.fallback,
    ):  # fmt: skip
        app.include_router(router)
