"""The FastAPI application: ``create_app(services, settings)``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ringback import __version__
from ringback.api import errors
from ringback.api.deps import ServicesDep
from ringback.api.errors import error_response
from ringback.api.limits import Busy, LoginLimiter, SecretChecker, address_key
from ringback.api.metrics import CONTENT_TYPE_LATEST, Metrics
from ringback.api.openapi_schemas import document
from ringback.api.request_log import RequestLog
from ringback.api.routes import (
    audit,
    call_history,
    campaign_rules,
    exports,
    jobs,
    numbers,
    oauth,
    priority,
    queues,
    sip_trunks,
    storage,
    suppressions,
    tasks,
    webhooks,
)
from ringback.api.schemas import HealthOut, ReadyCheck, ReadyOut
from ringback.api.storage_links import API_PREFIX
from ringback.client_files import MAX_FILE_BYTES
from ringback.clock import Clock
from ringback.config import Settings
from ringback.console import install as install_console
from ringback.domain.digits import ascii_digits
from ringback.domain.rows import MetricsCounts
from ringback.faults import FaultReporter
from ringback.service import Services

PREFIX = API_PREFIX  # also the storage links of faxes (api/storage_links.py)
#: every request body, storage uploads included: the one limit (docs/api.md, "Limits")
MAX_BODY_BYTES = MAX_FILE_BYTES
#: a path holding a control character matches no resource (Starlette's route regexes end in
#: ``$``, which also matches before a final newline: ``/numbers/%0A`` would list the numbers)
_CONTROL_IN_PATH = re.compile(r"[\x00-\x1f\x7f]")
_STORAGE_PATH = re.compile(rf"^{re.escape(PREFIX)}/client/[^/]+/storage(/|$)")

DESCRIPTION = """\
Outbound-call scheduler: queues of callback tasks (the `task_scheduler` API) and
msg_call / ivr_call jobs (the AddJob JSON). Get a token with `POST /oauth/token`
(client credentials), then send `Authorization: Bearer <token>`. Errors are JSON
`{"error", "message", "details"}`. POSTs accept an `Idempotency-Key` header.
"""


class RefuseControlPaths:
    """Answer 404 JSON for a path holding a control character (``%0A``, ``%00``, …): no
    resource has one in its name, and none may fall through to a list route. Storage paths
    are left to the storage routes (400 ``bad_path``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        # storage paths have their own check (400 bad_path, naming the path)
        if _CONTROL_IN_PATH.search(path) and not _STORAGE_PATH.match(path):
            response = error_response(
                404, "not_found", "no such resource: the path holds a control character"
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over a size (413), by Content-Length and while reading.

    Storage paths get ``storage_max_bytes``; None leaves them to the storage routes' own limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, storage_max_bytes: int | None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.storage_max_bytes = storage_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.storage_max_bytes if _STORAGE_PATH.match(path) else self.max_bytes
        if limit is None:
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not ascii_digits(length) or int(length) > limit):
            await self._refuse(scope, receive, send, limit)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(
            413, "too_large", f"the request body is larger than {limit} bytes",
            headers={"Connection": "close"},
        )  # fmt: skip
        await response(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    """Raised while the body is read; FastAPI passes HTTP exceptions on to the handlers."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


MethodTable = list[tuple[re.Pattern[str], frozenset[str]]]


def method_table(routers: list[tuple[str, APIRouter]]) -> MethodTable:
    """(path regex, methods) of every route of these (prefix, router) pairs."""
    table: MethodTable = []
    for prefix, router in routers:
        for route in router.routes:
            if isinstance(route, Route) and route.methods:
                regex, _format, _convertors = compile_path(prefix + route.path)
                table.append((regex, frozenset(route.methods)))
    return table


class AllowHeader:
    """405 answers list every method of the path: FastAPI makes one route per method, and the
    405 names only some of them."""

    def __init__(self, app: ASGIApp, table: MethodTable) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")

        async def fixed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                given = [v for k, v in message["headers"] if k.lower() == b"allow"]
                allowed = {m.strip() for v in given for m in v.decode().split(",") if m.strip()}
                for regex, methods in self.table:
                    if regex.match(path):
                        allowed |= methods
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"allow"]
                headers.append((b"allow", ", ".join(sorted(allowed)).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, fixed_send)


def create_app(
    services: Services,
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    storage_max_body_bytes: int | None = None,
) -> FastAPI:
    """The API over ``services`` (built with a storage). Pass ``metrics`` to share it with a
    worker in this process."""
    if services.storage is None:
        raise ValueError("the API serves the clients' files: build its Services with a storage")
    clock = services.clock
    app = FastAPI(
        title="ringback",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # /docs and /redoc: the console's, from packaged files (no CDN)
        redoc_url=None,
    )
    app.state.services = services
    app.state.clock = clock
    app.state.storage = services.storage
    app.state.settings = settings
    app.state.metrics = metrics or Metrics()
    # failed secret checks: per client_id and address, in this process (see api/limits.py)
    app.state.login_limiter = LoginLimiter.from_settings(settings, lambda: clock.now().timestamp())
    services.clients.check_secrets_with(SecretChecker(settings.token_verify_threads).verify)
    errors.install(app)

    @app.exception_handler(OverflowError)
    async def _overflow(_request: Request, exc: OverflowError) -> Response:
        # e.g. a time near year 1 or 9999 that leaves the calendar once moved to UTC
        return error_response(422, "invalid_input", f"value out of range: {exc}")

    app.add_middleware(
        BodyLimit,
        max_bytes=max_body_bytes,
        storage_max_bytes=storage_max_body_bytes,
    )
    api_routers = [
        exports.router,  # before tasks and call_history: their /{id} would take export.csv
        queues.router, tasks.router, jobs.router, webhooks.router, numbers.router,
        call_history.router, storage.router, suppressions.router, priority.router,
        sip_trunks.router, campaign_rules.router, audit.router,
    ]  # fmt: skip
    service = _service_router(clock)
    app.include_router(oauth.router)
    for router in api_routers:
        # with a prefix: FastAPI checks the paths of a router included without one by building
        # every route of it, which a request then builds again (0.2 s of CPU per app)
        app.include_router(router, prefix=PREFIX)
    app.include_router(service)
    document(app)  # /openapi.json: the webhook payloads (not served) and the examples
    table = method_table(
        [("", oauth.router), ("", service), *((PREFIX, router) for router in api_routers)]
    )
    app.add_middleware(AllowHeader, table=table)
    app.add_middleware(RefuseControlPaths)
    # the operator console (/ui) and the API docs (/docs, /redoc): ringback/console/
    install_console(app, busy=(Busy,), address_key=address_key)
    app.add_middleware(RequestLog)  # outermost: every answer has its id and its log line
    return app


def _service_router(clock: Clock) -> APIRouter:
    router = APIRouter(tags=["service"])
    unavailable: dict[int | str, dict[str, Any]] = {503: {"model": ReadyOut}}
    # probes ask every few seconds: while the database is away, one line, then summaries
    database = FaultReporter("readiness check", monotonic=lambda: clock.now().timestamp())

    @router.get("/healthz", response_model=HealthOut)
    async def healthz() -> HealthOut:
        """Liveness: 200 while this process answers (its event loop runs). It does not ask
        the database: a database outage is no reason to restart the process (see /readyz)."""
        return HealthOut()

    @router.get("/readyz", response_model=ReadyOut, responses=unavailable)
    async def readyz(request: Request, services: ServicesDep) -> ReadyOut | Response:
        """Readiness: 200 when this process can do its work — the database answers (migrated),
        its worker runs (when it has one), and webhook deliveries are not stuck (the
        longest-waiting pending one was due less than RINGBACK_READY_WEBHOOK_LAG seconds ago);
        else 503 with the same body naming what is not."""
        checks: dict[str, ReadyCheck] = {}
        try:
            version = await services.schema_version()
            counts = await services.metrics_counts()
        except Exception as exc:  # any failure to reach the database is "not ready"
            database.failed(exc)
            checks["database"] = ReadyCheck(ok=False, detail="the database does not answer")
        else:
            database.succeeded()
            checks["database"] = ReadyCheck(
                ok=version > 0,
                detail=f"schema version {version}" if version else "not migrated",
            )
            checks["webhooks"] = _webhook_check(counts, services)
        worker: Callable[[], str | None] | None = getattr(request.app.state, "worker_problem", None)
        if worker is not None:
            problem = worker()
            checks["worker"] = ReadyCheck(ok=problem is None, detail=problem or "running")
        ready = all(check.ok for check in checks.values())
        body = ReadyOut(status="ready" if ready else "not ready", checks=checks)
        if ready:
            return body
        return Response(body.model_dump_json(), status_code=503, media_type="application/json")

    def _webhook_check(counts: MetricsCounts, services: Services) -> ReadyCheck:
        pending = sum(n for _client, status, n in counts.deliveries if status == "pending")
        oldest = counts.oldest_pending_delivery
        lag = max(0.0, (clock.now() - oldest).total_seconds()) if oldest else 0.0
        limit = services.settings.ready_webhook_lag
        return ReadyCheck(
            ok=lag < limit,
            detail=f"{pending} pending, the oldest due {lag:.0f} s ago (limit {limit:.0f} s)",
        )

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics(request: Request, services: ServicesDep) -> Response:
        """Prometheus text format."""
        registry: Metrics = request.app.state.metrics
        body = registry.render(
            await services.status(), await services.metrics_counts(), clock.now()
        )
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
