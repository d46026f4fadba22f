"""Inbound calls: the IVR a called number is routed to (``/numbers/``), run on a real inbound
leg (the SIP dialer) or on a simulated one (``POST /calls/simulate``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import structlog

from ringback.client_files import Storage
from ringback.clock import Clock
from ringback.config import Settings
from ringback.domain.rows import NumberRow
from ringback.ivr.fetch import FetchConfig, Fetcher
from ringback.ivr.interpret import IvrRun, JobQueue, call_variables
from ringback.ivr.limits import store_trace
from ringback.ivr.runner import IvrEnvironment, IvrSource, run_ivr
from ringback.ivr.signing import SigningFetcher
from ringback.ivr.simulate import simulate_call
from ringback.service.clients import ClientService, SigningKeys
from ringback.service.tasks import TaskService
from ringback.store import Store
from ringback.telephony.base import Call, CallRecord, Dialer

log = structlog.get_logger(__name__)


def ivr_source(route: NumberRow) -> IvrSource:
    """The first document of a routed number's IVR: its answer URL list or its storage file."""
    if route.answer_url is not None:
        return IvrSource("url", route.answer_url)
    assert route.ivr_file is not None  # the table's CHECK: exactly one of the two
    return IvrSource("storage", route.ivr_file)


def completed_url(route: NumberRow) -> str | None:
    """Where ``CallStatus=completed`` goes: the answer URL, when the route asks for it."""
    return route.answer_url if route.notify_completed else None


async def simulate_inbound(
    route: NumberRow,
    *,
    caller: str,
    digits: str,
    variables: Mapping[str, str],
    storage: Storage,
    jobs: JobQueue,
    clock: Clock,
    settings: Settings,
    signing: SigningKeys,
) -> tuple[IvrRun, CallRecord]:
    """An inbound call from ``caller`` to a routed number, on the fast simulator: no ringing
    and no media time, but the IVR really runs (AddJob adds tasks, URLs are fetched, signed
    with the client's signing secret)."""
    return await simulate_call(
        ivr_source(route),
        clock,
        caller=caller,
        called=route.number,
        digits=digits,
        variables=variables,
        storage=storage,
        client_id=route.client_id,
        jobs=jobs,
        fetcher=signed_fetcher(signing, route.client_id, settings),
        completed_url=completed_url(route),
    )


def signed_fetcher(signing: SigningKeys, client_id: int, settings: Settings) -> SigningFetcher:
    """What the IVR of ``client_id`` fetches with: every request signed with its secret."""

    async def secrets() -> list[str]:
        return await signing.secrets(client_id)

    return SigningFetcher(FetchConfig.from_settings(settings), secrets)


async def answer_inbound(
    call: Call,
    route: NumberRow,
    *,
    calling_number: str,
    storage: Storage,
    jobs: JobQueue,
    dialer: Dialer,
    clock: Clock,
    fetcher: Fetcher,
) -> IvrRun:
    """Run a routed number's IVR on a real inbound leg (ringing: ``<Answer>`` or the first
    media element answers it); the leg is hung up when the IVR ends."""
    record = call.record
    run = await run_ivr(
        call,
        ivr_source(route),
        env=IvrEnvironment(
            variables=call_variables(
                call_uuid=record.call_uuid,
                direction="inbound",
                calling_number=calling_number,
                called_number=route.number,
                status="ringing" if record.answered_at is None else "in-progress",
            ),
            storage=storage,
            client_id=route.client_id,
            jobs=jobs,
            dialer=dialer,
            fetcher=fetcher,
            now=clock.now,
            completed_url=completed_url(route),
        ),
    )
    record.direction = "inbound"
    store_trace(record.detail, run.trace_lines())
    if run.error is not None:
        log.info("inbound IVR failed", number=route.number, error=run.error.message)
    return run


class InboundLeg(Call, Protocol):
    """An inbound leg that rings until it is picked up (the SIP dialer's calls)."""

    async def answer(self) -> None: ...


#: what the SIP dialer calls for each inbound INVITE: (leg, called number, calling number)
InboundHandler = Callable[[InboundLeg, str, str], Awaitable[None]]


def inbound_handler(
    store: Store, storage: Storage, dialer: Dialer, clock: Clock, settings: Settings
) -> InboundHandler:
    """Route each inbound call by its called number (``/numbers/``): answer it, run the
    number's IVR, and keep the call (and its Transfer legs) in the client's call history.
    A number no client routes is refused (404) and not recorded: it belongs to nobody."""
    jobs = TaskService(store, clock, storage)
    signing = SigningKeys(ClientService(store, clock))

    async def handle(call: InboundLeg, called: str, calling: str) -> None:
        route = await store.route_for(called)
        if route is None:
            log.info("inbound call to a number nobody routes", number=called)
            await call.hangup("UNALLOCATED_NUMBER")
            return
        run: IvrRun | None = None
        try:
            await call.answer()
            run = await answer_inbound(
                call, route, calling_number=calling, storage=storage, jobs=jobs,
                dialer=dialer, clock=clock,
                fetcher=signed_fetcher(signing, route.client_id, settings),
            )  # fmt: skip
        finally:
            await call.hangup()
            record = await call.wait_ended()
            legs = [record, *(run.other_legs if run is not None else [])]
            await store.save_calls(route.client_id, legs)

    return handle
