"""Request ids and the API's access log: one line per request, with its id on every line.

Every HTTP request gets an id: the client's ``X-Request-ID`` when it is a sane token (1 to 128
letters, digits, ``.``, ``_``, ``-``), else a new random one. The response carries it back in
``X-Request-ID``, and every log line written while the request runs (the API's, the
application layer's, the store's) has ``request_id`` — bound with structlog's context
variables, so nothing passes it along by hand. When the request ends, one line: method, path
(without the query string, which may hold what should not be logged), status, duration and the
client's address. It replaces uvicorn's access log, which runs outside the request and so could
not carry the id. The app's metrics (``app.state.metrics``) count the request by method, route
template (never the raw path, whose ids would make a series each) and status.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ringback.logoutput import logger

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_HEADER_KEY = HEADER.lower().encode()

#: the access lines' logger (one line per request: ``logoutput.logger``, not structlog's proxy)
NAME = "ringback.api"


def request_id(scope: Scope) -> str:
    """The client's id for this request if it is a sane token, else a new one."""
    for key, value in scope.get("headers", ()):
        if key == _HEADER_KEY:
            given: str = value.decode("latin-1")
            if _SANE.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


class RequestLog:
    """ASGI middleware: the request id and the access line (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        status = 500  # what the client gets if the app fails before answering
        started = time.perf_counter()  # real time on purpose: it measures the request

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(HEADER, rid)
            await send(message)

        bound = structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            client, method = scope.get("client"), scope.get("method", "")
            logger(NAME).info(
                "request", method=method, path=scope.get("path", ""), status=status,
                ms=round(seconds * 1000, 1), client=client[0] if client else None,
            )  # fmt: skip
            structlog.contextvars.reset_contextvars(**bound)
            app = scope.get("app")
            metrics = getattr(getattr(app, "state", None), "metrics", None)
            if metrics is not None:
                metrics.observe_request(method, route_template(scope), status, seconds)


def route_template(scope: Scope) -> str:
    """The matched route's path template, e.g. ``/api/ver1.0/client/{client_id}/jobs/`` (a
    bounded label), or ``(unmatched)``: the request's path with each path parameter's value put
    back as ``{name}``, in order (a last parameter may span segments: a storage path)."""
    route = scope.get("route")
    if route is None:
        return "(unmatched)"
    segments = str(scope.get("path", "")).split("/")
    params = [(name, str(value)) for name, value in scope.get("path_params", {}).items()]
    out: list[str] = []
    index = 0
    while index < len(segments):
        if params and segments[index] == params[0][1]:
            out.append("{" + params.pop(0)[0] + "}")
        elif len(params) == 1 and "/".join(segments[index:]) == params[0][1]:
            out.append("{" + params.pop(0)[0] + "}")
            break
        else:
            out.append(segments[index])
        index += 1
    if params:  # not found in the path: the route's own template (without its prefix)
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else "(unmatched)"
    return "/".join(out)
