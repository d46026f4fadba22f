"""Run an IVR document as a simulated inbound call (``ringback ivr run``, tests, benchmarks).

The simulator has no inbound legs: the caller is modelled as a simulator leg that is already
answered when the document starts, whose DTMF script is ``digits`` (``,`` = a pause: the
current GetDigits times out). Call variables are those of an inbound call from ``caller`` to
``called``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ringback.clock import Clock
from ringback.ids import new_uuid
from ringback.ivr.interpret import Interpreter, IvrRun, JobQueue, call_variables
from ringback.ivr.parse import Document
from ringback.storage import Storage
from ringback.telephony.base import CallRecord, OriginateRequest
from ringback.telephony.sim import SimDialer, load_sim_rules


async def simulate_call(
    document: Document,
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
) -> tuple[IvrRun, CallRecord]:
    """Run ``document`` on a simulated call; the run (trace, variables, error) and the record."""
    builtin = load_sim_rules(None)
    rules = replace(builtin, defaults=replace(builtin.defaults, dtmf=digits.upper()))
    dialer = SimDialer(clock, rules, fast=fast)
    call_uuid = new_uuid()
    call = await dialer.originate(
        OriginateRequest(to_number=caller, caller_id_number=called, call_uuid=call_uuid)
    )
    await call.wait_answer()
    interpreter = Interpreter(
        document,
        call,
        variables=call_variables(
            call_uuid=call_uuid,
            direction="inbound",
            calling_number=caller,
            called_number=called,
            extra={key: str(value) for key, value in (variables or {}).items()},
        ),
        storage=storage,
        client_id=client_id,
        jobs=jobs,
        now=clock.now,
        **({"max_steps": max_steps} if max_steps is not None else {}),
    )
    run = await interpreter.run()
    await call.hangup()
    record = call.record
    record.direction = "inbound"
    record.detail["ivr_trace"] = [str(entry) for entry in run.trace]
    return run, record
