"""Answers kept for idempotency keys: a request sent again with the same key gets the first
answer back (the API's ``Idempotency-Key`` header)."""

from __future__ import annotations

from ringback.clock import Clock
from ringback.store import Store, StoredResponse


class StoredResponses:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def find(self, client_id: int, key: str) -> StoredResponse | None:
        """The answer kept for the client's ``key``, if any."""
        return await self.store.stored_response(client_id, key)

    async def keep(
        self, client_id: int, key: str, request_hash: str, status_code: int, body: str
    ) -> StoredResponse:
        """Keep an answer for ``key``; when another request kept one first, that one."""
        return await self.store.store_response(
            client_id, key, request_hash, status_code, body, self.clock.now()
        )
