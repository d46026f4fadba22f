"""A real HTTP application server on 127.0.0.1 (aiohttp, random port) for the IVR's fetches.

Each path answers what ``server.replies[path]`` says (404 for an unknown path); ``delay_s``
makes it answer late (to test timeouts). Every request is recorded with its method, path and
parameters (the form of a POST, the query of a GET).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(slots=True)
class Reply:
    body: str | bytes = ""
    status: int = 200
    content_type: str = "text/xml"
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    params: dict[str, str]


@dataclass(slots=True)
class AppServer:
    port: int = 0
    replies: dict[str, Reply] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def seen(self, path: str) -> list[Seen]:
        return [request for request in self.requests if request.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            params = {key: str(value) for key, value in (await request.post()).items()}
        else:
            params = dict(request.query)
        self.requests.append(Seen(request.method, request.path, params))
        reply = self.replies.get(request.path)
        if reply is None:
            return web.Response(status=404, text="not found")
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        body = reply.body.encode() if isinstance(reply.body, str) else reply.body
        return web.Response(status=reply.status, body=body, content_type=reply.content_type)


@asynccontextmanager
async def serving(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[int]:
    """An aiohttp server on 127.0.0.1 sending every request to ``handle``; yields its port."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets if site._server is not None else ()  # type: ignore[union-attr]
        yield sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()


@asynccontextmanager
async def app_server() -> AsyncIterator[AppServer]:
    server = AppServer()
    async with serving(server.handle) as port:
        server.port = port
        yield server
