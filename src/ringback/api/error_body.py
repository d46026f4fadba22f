"""The API's error body and the exception routes raise, without FastAPI: the schemas that use
them (``api.schemas``'s task resource) are imported by worker processes, which build webhook
bodies and serve no HTTP (``api.errors`` installs the handlers into the app)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ringback.domain.urlguard import BlockedAddress, check_literal


class ErrorBody(BaseModel):
    """Every error response."""

    error: str = Field(
        description="a code: invalid_input, not_found, conflict, unauthorized, too_large, …"
    )
    message: str = Field(description="what is wrong, in words")
    details: list[dict[str, Any]] = Field(
        [], description="each invalid field: {loc: [body | query | path, field, …], msg}"
    )


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        error: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.message = message
        self.details = details or []
        self.headers = headers


def invalid_body_field(field: str, message: str) -> ApiError:
    """422 ``invalid_input`` naming one field of the request body."""
    return ApiError(
        422, "invalid_input", f"invalid input: body.{field}",
        [{"loc": ["body", field], "msg": message}],
    )  # fmt: skip


def check_body_url(field: str, url: str, *, allow_private: bool) -> None:
    """The address guard on a URL the request gives for later use (a webhook, an answer URL):
    422 naming ``field`` when ringback would refuse to call it."""
    try:
        check_literal(url, allow_private=allow_private)
    except BlockedAddress as exc:
        raise invalid_body_field(field, str(exc)) from None
