"""The API's documentation pages, offline: ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from
the vendored files of ``static/vendor/``, and the OpenAPI document's OAuth2 client-credentials
scheme, so that Swagger's "Authorize" gets a token from ``POST /oauth/token`` itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from ringback.console.assets import static_url

#: the token endpoint of the client-credentials grant (``api/routes/oauth.py``)
TOKEN_URL = "/oauth/token"
#: the OpenAPI security scheme Swagger UI's "Authorize" dialog fills in
SCHEME = "ClientCredentials"
_BEARER = "HTTPBearer"  # the scheme FastAPI names after ``HTTPBearer`` (api/deps.py)


def docs_router(openapi_url: str, title: str) -> APIRouter:
    """``GET /docs`` and ``GET /redoc``, each page loading only files of this server."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs", response_class=HTMLResponse)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} – API",
            swagger_js_url=static_url("vendor/swagger-ui/swagger-ui-bundle.js"),
            swagger_css_url=static_url("vendor/swagger-ui/swagger-ui.css"),
            swagger_favicon_url=static_url("vendor/swagger-ui/favicon-32x32.png"),
            oauth2_redirect_url=None,
            # the dialog sends client_id and client_secret in the form body (the token
            # endpoint also takes them as HTTP Basic)
            init_oauth={"clientSecret": "", "useBasicAuthenticationWithAccessCodeGrant": False},
            swagger_ui_parameters={"persistAuthorization": False, "tryItOutEnabled": True},
        )

    @router.get("/redoc", response_class=HTMLResponse)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} – API",
            redoc_js_url=static_url("vendor/redoc/redoc.standalone.js"),
            redoc_favicon_url=static_url("vendor/swagger-ui/favicon-32x32.png"),
            with_google_fonts=False,
        )

    return router


def with_client_credentials(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with an OAuth2 client-credentials scheme beside the bearer one: every
    operation that takes a bearer token also takes one got by the flow (the same header)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "oauth2",
        "description": "Your client_id and client_secret (`ringback client create NAME`)",
        "flows": {"clientCredentials": {"tokenUrl": TOKEN_URL, "scopes": {}}},
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            security: list[dict[str, Any]] = operation.get("security") or []
            bearer = any(_BEARER in entry for entry in security)
            if bearer and not any(SCHEME in entry for entry in security):
                security.append({SCHEME: []})
    return schema


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` from the package (build ``app`` with ``docs_url=None``
    and ``redoc_url=None``) and declare the client-credentials scheme in its OpenAPI."""
    if app.openapi_url is None:
        raise ValueError("the docs pages read the OpenAPI document: keep openapi_url")
    app.include_router(docs_router(app.openapi_url, app.title))
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_client_credentials(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
