"""The operator console in the browser (issue 15) and the API's documentation pages, served by
``ringback serve`` itself from this package: server-rendered Jinja2 pages under ``/ui`` with a
vendored htmx and one stylesheet, ``/docs`` and ``/redoc`` from vendored Swagger UI and ReDoc.
No CDN: it all works offline. Pages call the application layer (``ringback.service``), never
the store. ``install`` adds it all to the API app."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from ringback.console.assets import STATIC, STATIC_URL
from ringback.console.docs import install_docs


def install(app: FastAPI) -> None:
    """Add the docs pages and the console's static files to ``app`` (the API's app, built
    with ``docs_url=None, redoc_url=None``; its ``state.services`` serves the pages)."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC), name="console-static")
    install_docs(app)
