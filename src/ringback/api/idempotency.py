"""``Idempotency-Key`` on POSTs: a repeated request gets the first answer again.

Same client, key, method, path and body (sha256 of the raw bytes): the stored status and JSON
body are replayed with ``Idempotent-Replayed: true``. Same key with anything else: 409
``idempotency_conflict``. Only 2xx answers are stored, so a failed request may be retried.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request, Response

from ringback.api.deps import CurrentClient, ResponsesDep
from ringback.api.errors import ApiError
from ringback.service import StoredResponses

REPLAYED = "Idempotent-Replayed"
JSON = "application/json"


class Idempotency:
    def __init__(
        self, responses: StoredResponses, client_id: int, key: str | None, request_hash: str
    ) -> None:
        self.responses = responses
        self.client_id = client_id
        self.key = key
        self.request_hash = request_hash

    async def replay(self) -> Response | None:
        """The stored answer to this request, if it was made before; 409 if the key was used
        for another request."""
        if self.key is None:
            return None
        stored = await self.responses.find(self.client_id, self.key)
        if stored is None:
            return None
        if stored.request_hash != self.request_hash:
            raise ApiError(
                409, "idempotency_conflict",
                "this Idempotency-Key was already used for a different request",
            )  # fmt: skip
        return Response(
            stored.body, stored.status_code, headers={REPLAYED: "true"}, media_type=JSON
        )

    async def respond(self, status_code: int, content: Any) -> Response:
        """A JSON answer, kept for the key when the request has one."""
        body = orjson.dumps(content)
        if self.key is not None and 200 <= status_code < 300:
            await self.responses.keep(
                self.client_id, self.key, self.request_hash, status_code, body.decode()
            )
        return Response(body, status_code, media_type=JSON)


async def _idempotency(
    request: Request,
    responses: ResponsesDep,
    client_id: CurrentClient,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Repeat a POST safely: the first answer is replayed for the same key",
        ),
    ] = None,
) -> Idempotency:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.url.path}\n".encode())
    digest.update(await request.body())
    return Idempotency(responses, client_id, key, digest.hexdigest())


IdempotencyDep = Annotated[Idempotency, Depends(_idempotency)]
