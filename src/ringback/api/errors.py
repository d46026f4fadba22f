"""Errors as JSON ``{"error": code, "message": text, "details": [...]}`` with the right status.

Routes raise :class:`ApiError` (or let the store's ``NotFound`` / ``Conflict`` and the service's
``InvalidInput`` through); the handlers registered by :func:`install` turn them, and FastAPI's
own validation errors, into that shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ringback.api.error_body import ApiError as ApiError
from ringback.api.error_body import ErrorBody as ErrorBody
from ringback.api.error_body import check_body_url as check_body_url
from ringback.api.error_body import invalid_body_field as invalid_body_field
from ringback.domain.rows import Conflict, InvalidInput, NotFound


def error_response(
    status_code: int,
    error: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=error, message=message, details=details or [])
    return JSONResponse(body.model_dump(), status_code=status_code, headers=headers)


def _loc(loc: tuple[Any, ...] | list[Any]) -> list[Any]:
    # FastAPI prefixes "body" / "query" / "path"; keep it: it says where the field is
    return [part for part in loc if part not in ("msg_call", "ivr_call")]


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.error, exc.message, exc.details, exc.headers)

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, "not_found", str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return error_response(409, "conflict", str(exc))

    @app.exception_handler(InvalidInput)
    async def _invalid(_request: Request, exc: InvalidInput) -> JSONResponse:
        return error_response(422, "invalid_input", exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for error in exc.errors():
            loc = _loc(error.get("loc", ()))
            msg = str(error.get("msg", "")).removeprefix("Value error, ")
            if error.get("type") == "extra_forbidden":
                msg = f"unknown field {loc[-1]!r}"
            details.append({"loc": loc, "msg": msg})
        fields = ", ".join(".".join(str(p) for p in d["loc"]) for d in details[:5])
        return error_response(422, "invalid_input", f"invalid input: {fields}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                 413: "too_large", 429: "too_many_requests"}  # fmt: skip
        return error_response(
            exc.status_code,
            codes.get(exc.status_code, "http_error"),
            str(exc.detail),
            headers=getattr(exc, "headers", None),
        )
