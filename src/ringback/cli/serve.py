"""``ringback serve``, ``ringback worker`` and ``ringback migrate``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from typing import Any

import structlog

from ringback.cli.common import SetupError, errors, escape, out, run, shown_url
from ringback.clock import AlignedClock
from ringback.config import Settings
from ringback.domain.rows import CallRow, TaskRow
from ringback.engine.processes import LISTEN_FD_ENV, follow_parent
from ringback.logoutput import LogOutput, log_settings_from_env
from ringback.service import Services
from ringback.stalls import LoopStallMonitor
from ringback.telephony.base import Dialer
from ringback.telephony.sim import SimDialer, load_sim_rules

log = structlog.get_logger("ringback")


async def _run_service(
    services: Services,
    settings: Settings,
    *,
    api: bool,
    listening: socket.socket | None = None,
) -> None:
    """The worker, and with ``api`` the HTTP API, in this process until SIGTERM / Ctrl-C."""
    from ringback.engine.worker import Worker, WorkerConfig  # only the service needs the engine

    clock, storage = services.clock, services.storage
    assert storage is not None  # run(work, with_storage=True)
    dialer = await _dialer(settings, services)
    metrics = None
    server = None
    if api:
        from ringback.api.metrics import Metrics  # one set of metrics: the API shows the worker's

        metrics = Metrics()
        server = _api_server(services, settings, metrics)
        sockets = None if listening is None else [listening]
    # the composition root: the engine works on the store the services are built over
    worker = Worker(
        services.store, dialer, storage, clock, WorkerConfig.from_settings(settings),
        metrics=metrics,
    )  # fmt: skip
    from ringback.webhooks.dispatcher import Dispatcher, DispatcherConfig

    # webhooks go out from their own asyncio task: a slow receiver never holds up dialing
    dispatcher = Dispatcher(
        services.webhooks, clock, DispatcherConfig.from_settings(settings), owner=worker.owner,
        task_json=task_json,
    )  # fmt: skip

    def stop() -> None:
        worker.stop()
        dispatcher.stop()
        if server is not None:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    stalls = LoopStallMonitor()  # logs "loop stall max_ms=…" when the service stops
    stalls.start()
    running = [asyncio.create_task(worker.run()), asyncio.create_task(dispatcher.run())]
    if server is not None:
        assert metrics is not None
        metrics.watch_calls_in_progress(lambda: worker.in_flight)
        _watch_registrations(metrics, dialer, clock)
        trunks = getattr(dialer, "pool", None)  # the sip dialer's trunks: metrics and the API
        if trunks is not None:
            metrics.watch_sip_trunks(trunks.report)
            server.config.app.state.sip_trunks = trunks.report
        background = list(zip(("worker", "webhook sender"), running, strict=True))

        def worker_problem() -> str | None:
            """/readyz: this process is not ready once its worker or webhook sender ended."""
            return next((f"the {what} has stopped" for what, t in background if t.done()), None)

        server.config.app.state.worker_problem = worker_problem
        running.append(asyncio.create_task(server.serve(sockets=sockets)))
    aligning = asyncio.create_task(_keep_aligned(services))
    try:
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        stop()  # one ended (a stop, or the API could not start): end the other too
        await asyncio.gather(*running, return_exceptions=True)
        for task in done:
            problem = task.exception()
            if problem is not None:
                raise problem
    finally:
        aligning.cancel()
        await stalls.stop()
        await dialer.close()


#: how often a running service reads the database server's clock again
ALIGN_EVERY_S = 60.0


def task_json(row: TaskRow, calls: list[CallRow]) -> dict[str, Any]:
    """The task as the API shows it, for a webhook body (``api/task_view.py``: no pydantic),
    imported by the first webhook that carries a task, not by every worker."""
    from ringback.api.task_view import task_json as shown

    return shown(row, calls)


async def _keep_aligned(services: Services) -> None:
    """Follow the database server's clock (see :class:`~ringback.clock.AlignedClock`); a
    failed reading keeps the last offset (the worker reports the database being away)."""
    if not isinstance(services.clock, AlignedClock):
        return
    while True:
        await services.clock.sleep(ALIGN_EVERY_S)
        with contextlib.suppress(Exception):
            await services.align_clock()


def _watch_registrations(metrics: Any, dialer: Dialer, clock: Any) -> None:
    """The sip dialer's registrations (docs/sip-dialogs.md) in /metrics, when it has any."""
    registrations = getattr(dialer, "registrations", None)
    if registrations:
        from ringback.telephony.sip.registration import gauge_rows

        metrics.watch_sip_registrations(lambda: gauge_rows(registrations, clock.now()))


async def _dialer(settings: Settings, services: Services) -> Dialer:
    """The dialer RINGBACK_DIALER names: the simulator, or the SIP user agent (bound here),
    whose inbound calls go to the IVR their called number is routed to (``/numbers/``)."""
    if settings.dialer != "sip":
        return SimDialer(
            services.clock,
            load_sim_rules(settings.sim_rules),
            fast=settings.sim_fast,
            truth_log=settings.sim_truth_log,
        )
    from ringback.telephony.sip.dialer import SipDialer  # only the sip backend needs it

    assert settings.sip is not None  # Settings.from_env reads RINGBACK_SIP_* for "sip"
    sip = settings.sip
    dialer = SipDialer(sip, services.clock)
    dialer.on_inbound = services.inbound_handler(dialer)
    try:
        return await dialer.start()
    except OSError as exc:
        raise SetupError(
            f"the sip dialer could not listen on {sip.local_host}:{sip.local_port} UDP/TCP "
            f"({exc.strerror or exc}; port in use? set RINGBACK_SIP_LOCAL_PORT or "
            "RINGBACK_SIP_TLS_PORT)"
        ) from None


def _listen(host: str, port: int) -> socket.socket:
    """The API's listening socket, opened before anything else starts (a port in use is one
    line, not a worker started and stopped), and before ``serve --processes N`` starts its
    children, which accept from it too (inherited by descriptor)."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # the protocol (TCP) given, not 0: asyncio turns Nagle off (TCP_NODELAY) only on
        # connections accepted from a socket whose proto says TCP; without it, a small answer
        # written in two parts waited ~40 ms for the client's delayed ACK
        sock = socket.socket(info[0], socket.SOCK_STREAM, info[2])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(2048)
    except OSError as exc:
        raise SetupError(
            f"the API cannot listen on {host}:{port} ({exc.strerror or exc}): stop what holds "
            "the port, or choose another with --port or RINGBACK_PORT"
        ) from None
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def _inherited_socket() -> socket.socket | None:
    """The listening socket a ``serve --processes N`` parent handed to this child, if any."""
    fd = os.environ.get(LISTEN_FD_ENV)
    return None if fd is None else socket.socket(fileno=int(fd))


def _api_server(services: Services, settings: Settings, metrics: Any) -> Any:
    import uvicorn

    from ringback.api.app import create_app

    class Server(uvicorn.Server):
        def capture_signals(self) -> Any:  # the service handles SIGTERM / SIGINT itself
            return contextlib.nullcontext()

    app = create_app(services, settings, metrics=metrics)
    # uvicorn's lines go through the one log configuration (log_config=None: no handlers of its
    # own); the API logs each request itself, with its request id (api.requests)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False
    )
    return Server(config)


def serve_now(what: str, processes: int | None, *, api: bool) -> None:
    follow_parent()  # a child of ``--processes N`` stops when its parent dies
    # logs go to stderr, like every other message of the service (stdout stays clean), written
    # by a thread: a full pipe or a slow terminal never holds up the event loop
    with errors():
        log_format, level = log_settings_from_env()
    output = LogOutput.start(sys.stderr, level, log_format)
    try:
        _serve_logged(what, processes, api=api)
    finally:
        # stopped: a second SIGTERM (strace showed a killed parent's death signal delivered
        # twice to a child) must not end the process before its last lines are written; the
        # event loop, once closed, left SIGTERM's default action (the end) in place again
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        output.stop()  # what is queued is written before the process ends


def _serve_logged(what: str, processes: int | None, *, api: bool) -> None:

    async def work(services: Services, settings: Settings) -> None:
        from ringback.engine.processes import WorkerProcesses

        count = processes or settings.worker_processes
        sip = settings.sip
        # one SIP port per process: the first binds RINGBACK_SIP_LOCAL_PORT, child i the port
        # i above it (0: each any free port)
        sip_ports = None
        if sip is not None and sip.local_port != 0:
            if sip.local_port + count - 1 > 65535:
                raise SetupError(
                    f"{count} processes need SIP ports {sip.local_port} to "
                    f"{sip.local_port + count - 1}: set a lower RINGBACK_SIP_LOCAL_PORT"
                )
            base = sip.local_port
            # TLS (with a certificate): RINGBACK_SIP_TLS_PORT and up, else the ports right
            # after the SIP ones (one process: the SIP port + 1)
            tls_base = sip.tls_port or base + count
            if tls_base + count - 1 > 65535:
                raise SetupError(
                    f"{count} processes need SIP TLS ports {tls_base} to {tls_base + count - 1}:"
                    " set a lower RINGBACK_SIP_TLS_PORT or RINGBACK_SIP_LOCAL_PORT"
                )

            def sip_ports(index: int) -> dict[str, str]:
                return {
                    "RINGBACK_SIP_LOCAL_PORT": str(base + index),
                    "RINGBACK_SIP_TLS_PORT": str(tls_base + index),
                }

        dialer = settings.dialer
        if sip is not None:
            from ringback.telephony.sip.trunks import trunks_for  # the file checked up front

            trunks = trunks_for(sip)
            where = (
                f"trunks {', '.join(t.name for t in trunks)} from {sip.trunks_file}"
                if sip.trunks_file
                else f"trunk {sip.proxy_host}:{sip.proxy_port}"
            )
            dialer += f" ({where}, SIP {sip.local_host}:"
            ports = (
                f"{sip.local_port}"
                if count == 1
                else f"{sip.local_port}-{sip.local_port + count - 1}"
            )
            dialer += f"{ports if sip.local_port else 'any'} UDP)"
        if settings.sim_rules:
            dialer += f" (rules {settings.sim_rules})"
        if settings.sim_fast:
            dialer += " (fast)"
        api_url = f"http://{settings.host}:{settings.port}/docs" if api else None
        # serve: every process serves the API from one listening socket, bound here first
        api_socket = _inherited_socket() if api else None
        if api and api_socket is None:
            api_socket = _listen(settings.host, settings.port)
        log.info(
            f"ringback {what} starting (Ctrl-C or SIGTERM stops)",
            **({"api": api_url} if api_url else {}),
            database=shown_url(settings.database_url), dialer=dialer,
            storage=str(settings.storage_dir.resolve()), processes=count,
        )  # fmt: skip
        extra = WorkerProcesses()
        try:
            # after the migration above: children find the schema ready
            extra.start(
                count - 1,
                "serve" if api else "worker",
                listen_fd=None if api_socket is None else api_socket.fileno(),
                env_for=sip_ports,
            )
            await _run_service(services, settings, api=api, listening=api_socket)
        finally:
            await asyncio.to_thread(extra.stop, settings.shutdown_grace_seconds)

    run(work, storage=True)


def migrate_now(as_json: bool) -> None:
    """``ringback migrate``."""

    async def work(services: Services, settings: Settings) -> tuple[str, int]:
        return shown_url(settings.database_url), await services.schema_version()

    url, version = run(work)
    if as_json:
        out.print_json(data={"database": url, "schema_version": version})
    else:
        out.print(f"database {escape(url)}: schema at version {version}")
