"""A webhook receiver on 127.0.0.1 (aiohttp) that can be switched down, to 500s and back.

``down()`` closes the listening socket (connections are refused), ``failing()`` answers 500,
``healthy()`` answers 200 after holding each request ``hold_s`` (so that killed senders die
with requests open, and redeliver them). Every request is recorded in arrival order (those
answered 500 marked so), with its ``Ringback-Event-Id`` and the body's task id and
``sequence``; the check counts only requests answered 2xx as deliveries.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    mode: str = "down"  # down | failing | healthy
    hold_s: float = 0.3  # a healthy answer waits this long: kills land while requests are open
    requests: list[dict[str, Any]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            data = json.loads(body)
            task = data.get("task") or {}
            task_id, sequence = task.get("id"), data.get("sequence")
        except (ValueError, AttributeError):
            task_id = sequence = None
        status = 500 if self.mode == "failing" else 200
        self.requests.append(
            {
                "event_id": request.headers.get("Ringback-Event-Id", ""),
                "task_id": task_id,
                "sequence": sequence,
                "status": status,
                "t": time.time(),
            }
        )
        if status == 200 and self.hold_s > 0:
            await asyncio.sleep(self.hold_s)  # recorded (processed) first, answered later
        return web.Response(status=status, text="ok" if status == 200 else "failing")

    async def _listen(self) -> None:
        if self._site is not None:
            return
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    async def down(self) -> None:
        self.mode = "down"
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._site = None

    async def failing(self) -> None:
        self.mode = "failing"
        await self._listen()

    async def healthy(self) -> None:
        self.mode = "healthy"
        await self._listen()

    def deliveries(self) -> list[dict[str, Any]]:
        """Requests answered 2xx with a task event, in arrival order."""
        return [
            r
            for r in self.requests
            if r["status"] == 200 and r["task_id"] is not None and r["sequence"] is not None
        ]
