"""Run an IVR as a simulated inbound call (``ringback ivr run``, tests, benchmarks).

The simulator has no inbound legs: the caller is modelled as a simulator leg that is already
answered when the document starts, whose DTMF script is ``digits`` (``,`` = a pause: the
current GetDigits times out). Call variables are those of an inbound call from ``caller`` to
``called`` (``variables`` may override any of them, ``CallingNumber`` included). Transfer legs
are simulator legs too: what a number does comes from the simulator's number rules (e.g. a
number ending in 486 is busy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ringback.client_files import Storage
from ringback.clock import Clock
from ringback.ids import new_uuid
from ringback.ivr.fetch import FetchConfig, Fetcher, HttpFetcher
from ringback.ivr.interpret import IvrRun, JobQueue, SmsSender, call_variables
from ringback.ivr.limits import LIMITS, IvrLimits, store_trace
from ringback.ivr.parse import Document
from ringback.ivr.runner import IvrEnvironment, IvrSource, run_document, run_ivr
from ringback.telephony.base import CallRecord, OriginateRequest
from ringback.telephony.sim import SimDialer, SimRules, load_sim_rules


async def simulate_call(
    source: IvrSource | Document,
    clock: Clock,
    *,
    caller: str = "09012341234",
    called: str = "05068680000",
    digits: str = "",
    variables: Mapping[str, Any] | None = None,
    storage: Storage | None = None,
    client_id: int | None = None,
    jobs: JobQueue | None = None,
    fast: bool = True,
    max_steps: int | None = None,
    fetcher: Fetcher | None = None,
    completed_url: str | None = None,
    sms: SmsSender | None = None,
    sim_rules: SimRules | None = None,
    limits: IvrLimits = LIMITS,
) -> tuple[IvrRun, CallRecord]:
    """Run the IVR of ``source`` (or a parsed document) on a simulated call; the run (trace,
    variables, error) and the caller's call record (``detail["ivr_trace"]`` holds the trace).

    ``fetcher`` defaults to an :class:`HttpFetcher` that refuses private addresses.
    """
    base = sim_rules if sim_rules is not None else load_sim_rules(None)
    rules = replace(base, defaults=replace(base.defaults, dtmf=digits.upper()))
    dialer = SimDialer(clock, rules, fast=fast)
    call_uuid = new_uuid()
    extra = {key: str(value) for key, value in (variables or {}).items()}
    call_vars = call_variables(
        call_uuid=call_uuid,
        direction="inbound",
        calling_number=caller,
        called_number=called,
        extra=extra,
    )
    call = await dialer.originate(
        OriginateRequest(
            to_number=call_vars["CallingNumber"],
            caller_id_number=call_vars["CalledNumber"],
            call_uuid=call_uuid,
        )
    )
    await call.wait_answer()
    # Transfer legs follow the number rules without the caller's DTMF script
    transfer_dialer = SimDialer(clock, base, fast=fast)
    env = IvrEnvironment(
        variables=call_vars,
        storage=storage,
        client_id=client_id,
        jobs=jobs,
        dialer=transfer_dialer,
        fetcher=fetcher if fetcher is not None else HttpFetcher(FetchConfig()),
        now=clock.now,
        completed_url=completed_url,
        sms=sms,
        max_steps=max_steps if max_steps is not None else limits.max_steps,
        max_jumps=limits.max_jumps,
        limits=limits,
    )
    if isinstance(source, Document):
        run = await run_document(call, source, env=env)
    else:
        run = await run_ivr(call, source, env=env)
    record = call.record
    # the simulator placed the caller's leg as an outbound call to the caller: turn it round
    record.direction = "inbound"
    record.from_number, record.to_number = call_vars["CallingNumber"], call_vars["CalledNumber"]
    store_trace(record.detail, run.trace_lines(), limits)
    return run, record
