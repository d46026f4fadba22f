"""Inbound calls: the IVR a called number is routed to (``/numbers/``), run on a real inbound
leg (the SIP dialer) or on a simulated one (``POST /calls/simulate``)."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from ringback.clock import Clock
from ringback.config import Settings
from ringback.ivr.fetch import FetchConfig, HttpFetcher
from ringback.ivr.interpret import IvrRun, JobQueue, call_variables
from ringback.ivr.session import IvrEnvironment, IvrSource, run_ivr
from ringback.ivr.simulate import simulate_call
from ringback.storage import Storage
from ringback.store.numbers import NumberRow
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
) -> tuple[IvrRun, CallRecord]:
    """An inbound call from ``caller`` to a routed number, on the fast simulator: no ringing
    and no media time, but the IVR really runs (AddJob adds tasks, URLs are fetched)."""
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
        fetcher=HttpFetcher(FetchConfig.from_settings(settings)),
        completed_url=completed_url(route),
    )


async def answer_inbound(
    call: Call,
    route: NumberRow,
    *,
    calling_number: str,
    storage: Storage,
    jobs: JobQueue,
    dialer: Dialer,
    clock: Clock,
    settings: Settings,
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
            fetcher=HttpFetcher(FetchConfig.from_settings(settings)),
            now=clock.now,
            completed_url=completed_url(route),
        ),
    )
    record.direction = "inbound"
    record.detail["ivr_trace"] = [str(entry) for entry in run.trace]
    if run.error is not None:
        log.info("inbound IVR failed", number=route.number, error=run.error.message)
    return run
