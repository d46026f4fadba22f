"""One attempt of a task, whatever its kind: dial, run, hang up, report.

``run_attempt`` never raises for a call-level problem and never leaves a leg up: every leg it
started is hung up, recorded with ``ctx.record_call`` and reported with a ``call.ended`` event,
also when the runner fails unexpectedly (the result then says ``internal error: ...``).

Callback caller ids:

* A legs show ``attempts_src_ani_numbers[attempt - 1]`` if given, else
  ``callback_params.caller_id_number``, else nothing (the trunk's default);
* the B leg shows ``attempts_dst_ani_numbers[attempt - 1]`` if given, else
  ``callback_params.caller_id_number`` (the number the client configured for its calls), else
  the A number that answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ringback.client_files import StorageError
from ringback.domain.amd import MACHINE_COMMENT, answered_by_variable
from ringback.domain.cdr import fax_failed, fax_outcome
from ringback.domain.model import AttemptResult, EventType, FailedLeg, Leg, Outcome, TaskKind
from ringback.domain.outcomes import a_leg_rank
from ringback.domain.payloads import PayloadError, read_callback, read_ivr_call, read_msg_call
from ringback.engine.amd import hangs_up, screen_answer
from ringback.engine.context import AttemptContext
from ringback.engine.legs import LegSuppressed
from ringback.ivr.errors import IvrError
from ringback.ivr.limits import store_trace
from ringback.telephony.audio_files import AudioError, known_audio_seconds
from ringback.telephony.base import Call, CallError, CallRecord, CannotPlay, OriginateRequest

if TYPE_CHECKING:  # the IVR interpreter (lxml, ~7 MiB) is imported by an ivr_call's attempt
    from ringback.ivr.parse import Document
    from ringback.ivr.runner import IvrSource

log = logging.getLogger(__name__)

#: hangup cause of the A legs that lose the race to answer first
LOSE_RACE = "LOSE_RACE"

_Runner = Callable[[AttemptContext, "_Legs"], Awaitable[AttemptResult]]


async def run_attempt(ctx: AttemptContext) -> AttemptResult:
    """Run one attempt of ``ctx.kind``; see the module docstring."""
    legs = _Legs(ctx)
    try:
        result = await _RUNNERS[ctx.kind](ctx, legs)
    except PayloadError as exc:
        result = _not_dialled(f"invalid task payload: {exc}")
    except _OriginateFailed as exc:
        suppressed = isinstance(exc.error, LegSuppressed)  # on a do-not-call list: never retried
        result = AttemptResult(
            success=False,
            outcome=Outcome.FAILED,
            originated=legs.started,
            failed_leg=exc.failed_leg,
            comment=str(exc.error) if suppressed else f"cannot call {exc.to_number}: {exc.error}",
            retryable=not suppressed,
        )
    except Exception as exc:
        log.exception("attempt %s of task %s failed unexpectedly", ctx.attempt, ctx.task_id)
        result = AttemptResult(
            success=False,
            outcome=Outcome.FAILED,
            comment=f"internal error: {exc or type(exc).__name__}",
        )
    finally:
        await legs.finish_all()
    result.call_uuid = ctx.call_uuid
    return result


def leg_event_data(record: CallRecord) -> dict[str, Any]:
    """The data of a ``call.answered`` / ``call.ended`` event for one leg (times are datetimes,
    stored as ISO 8601 text)."""
    return {
        "leg_uuid": record.leg_uuid,
        "call_uuid": record.call_uuid,
        "leg": record.leg.value,
        "from_number": record.from_number,
        "to_number": record.to_number,
        "outcome": record.outcome.value if record.outcome is not None else None,
        "sip_code": record.sip_code,
        "hangup_cause": record.hangup_cause,
        "hangup_disposition": record.hangup_disposition,
        "started_at": record.started_at,
        "ringing_at": record.ringing_at,
        "answered_at": record.answered_at,
        "bridged_at": record.bridged_at,
        "bridged_with": record.bridged_with,
        "ended_at": record.ended_at,
        "duration_s": record.duration_s,
        "billsec": record.billsec,
        "fax": record.fax,
        "amd": record.amd,
    }


# --- msg_call -----------------------------------------------------------------------------


async def _run_msg_call(ctx: AttemptContext, legs: _Legs) -> AttemptResult:
    data = read_msg_call(ctx.payload)
    try:
        audio = ctx.storage.resolve(ctx.client_id, data.audio_file)
    except StorageError as exc:
        return _not_dialled(f"Cannot execute Play. {exc}")
    try:  # its header (see known_audio_seconds): nobody is rung for a file that cannot play
        known_audio_seconds(audio)
    except AudioError as exc:
        if not audio.is_file():
            return _not_dialled(f"Cannot execute Play. File {data.audio_file} doesn't exist")
        reason = str(exc).split(": ", 1)[-1]  # the message without the server's file name
        return _not_dialled(f"Cannot execute Play. File {data.audio_file}: {reason}")

    call = await legs.originate(_request(ctx, data.called_number, data.calling_number))
    if await legs.wait_answer(call) is not Outcome.ANSWERED:
        return _not_answered(await legs.finish(call))
    try:
        if hangs_up(await screen_answer(call, data.amd)):
            return _answered(
                await legs.finish(call), MACHINE_COMMENT, success=False, retryable=False
            )
        await call.play(audio, name=data.audio_file)
    except CannotPlay as exc:  # named by its storage name, never the server's path
        problem = CallError(f"cannot play {data.audio_file}: {exc.reason}")
        return _interrupted(await legs.finish(call), problem, "callee hung up during the message")
    except CallError as exc:
        return _interrupted(await legs.finish(call), exc, "callee hung up during the message")
    return _answered(await legs.finish(call), "message played")


# --- ivr_call -----------------------------------------------------------------------------


async def _run_ivr_call(ctx: AttemptContext, legs: _Legs) -> AttemptResult:
    from ringback.ivr.interpret import call_variables, static_problems
    from ringback.ivr.parse import MAX_DOCUMENT_BYTES, parse
    from ringback.ivr.runner import IvrEnvironment, IvrSource, run_document, run_ivr

    data = read_ivr_call(ctx.payload)
    source: IvrSource | Document
    if data.ivr_type == "url":
        source = IvrSource("url", data.ivr_data)
    else:  # refuse a document that cannot run before dialling anyone
        if data.ivr_type == "storage":
            try:
                text = ctx.storage.read_text(
                    ctx.client_id, data.ivr_data, max_bytes=MAX_DOCUMENT_BYTES
                )
            except StorageError as exc:
                return _not_dialled(f"Cannot read the IVR document: {exc}")
        else:
            text = data.ivr_data
        try:
            document = parse(text)
        except IvrError as exc:
            return _not_dialled(str(exc))
        problem = static_problems(document, ctx.storage, ctx.client_id)
        if problem is not None:
            return _not_dialled(str(problem))
        source = document

    call = await legs.originate(_request(ctx, data.called_number, data.calling_number))
    if await legs.wait_answer(call) is not Outcome.ANSWERED:
        return _not_answered(await legs.finish(call))
    try:
        amd = await screen_answer(call, data.amd)
    except CallError as exc:
        return _interrupted(await legs.finish(call), exc, "callee hung up during the detection")
    if hangs_up(amd):
        return _answered(await legs.finish(call), MACHINE_COMMENT, success=False, retryable=False)
    env = IvrEnvironment(
        variables=call_variables(
            call_uuid=ctx.call_uuid,
            direction="outbound",
            calling_number=data.calling_number,
            called_number=data.called_number,
            extra=None if amd is None else {"AnsweredBy": answered_by_variable(amd)},
        ),
        storage=ctx.storage,
        client_id=ctx.client_id,
        jobs=ctx.jobs,
        dialer=ctx.dialer,
        fetcher=ctx.fetcher,
        now=ctx.clock.now,
    )
    if isinstance(source, IvrSource):
        run = await run_ivr(call, source, env=env)
    else:  # parsed and checked above
        run = await run_document(call, source, env=env)
    for other in run.other_legs:  # Transfer legs, already ended
        ctx.record_call(other)
        ctx.emit(EventType.CALL_ENDED, leg_event_data(other))
    store_trace(call.record.detail, run.trace_lines())
    if run.error is not None:
        record = await legs.finish(call)
        return _with_fax(record, _answered(record, str(run.error), success=False, retryable=False))
    if run.call_error is not None:
        record = await legs.finish(call)
        if record.hangup_disposition == "recv_bye" and record.fax is not None:
            # a fax machine hangs up once the fax is done: the fax says how the call went
            return _with_fax(record, _answered(record, "IVR completed"))
        hung_up = _interrupted(record, CallError(run.call_error), "callee hung up during the IVR")
        return _with_fax(record, hung_up)
    record = await legs.finish(call)
    return _with_fax(record, _answered(record, "IVR completed"))


def _with_fax(record: CallRecord, result: AttemptResult) -> AttemptResult:
    """An ivr_call's result given what its fax did (docs/fax.md, "Results everywhere"): the
    comment names the fax's outcome, and a failed fax (a non-zero T.30 code) fails an attempt
    that would otherwise succeed; it may be tried again (``attempts``), as a fax machine
    redials."""
    fax = record.fax
    if fax is None:
        return result
    if result.success:
        result.comment = fax_outcome(fax)
        result.success = not fax_failed(fax)
    else:
        result.comment = f"{result.comment}; {fax_outcome(fax)}"
    return result


# --- callback -----------------------------------------------------------------------------


async def _run_callback(ctx: AttemptContext, legs: _Legs) -> AttemptResult:
    spec = read_callback(ctx.payload)
    a_numbers = list(dict.fromkeys([spec.a_number, *spec.extended_a_numbers]))
    a_caller_id = _for_attempt(spec.attempts_src_ani_numbers, ctx.attempt) or spec.caller_id_number
    a_calls = []
    for number in a_numbers:
        request = _request(ctx, number, a_caller_id, Leg.A, spec.caller_id_name, spec.variables)
        a_calls.append(await legs.originate(request, FailedLeg.A))

    a_call = await _first_to_answer(a_calls, legs)
    if a_call is None:
        return _a_not_answered([await legs.finish(call) for call in a_calls])

    b_caller_id = (
        _for_attempt(spec.attempts_dst_ani_numbers, ctx.attempt)
        or spec.caller_id_number
        or a_call.record.to_number
    )
    b_request = _request(
        ctx, spec.b_number, b_caller_id, Leg.B, spec.caller_id_name, spec.variables
    )
    b_call = await legs.originate(b_request, FailedLeg.B)
    b_outcome = await _answer_while_a_waits(b_call, a_call, legs)
    if b_outcome is None:
        await legs.finish(b_call)
        return _a_left(await legs.finish(a_call), "A hung up before B answered")
    if b_outcome is not Outcome.ANSWERED:
        b_record = await legs.finish(b_call)
        await legs.finish(a_call)
        return _not_answered(b_record, FailedLeg.B, "B leg: ")

    try:
        if spec.dst_dtmf:
            await b_call.send_dtmf(spec.dst_dtmf)
        bridging = asyncio.ensure_future(a_call.bridge(b_call))
        # a yield to the loop (not a wait, so not the clock's): the bridge task starts, and
        # the bridge is up once both records say so
        await asyncio.sleep(0)
        if a_call.record.bridged_at is not None:
            ctx.emit(
                EventType.CALL_BRIDGED,
                {
                    "call_uuid": ctx.call_uuid,
                    "a_leg_uuid": a_call.record.leg_uuid,
                    "b_leg_uuid": b_call.record.leg_uuid,
                    "bridged_at": a_call.record.bridged_at,
                },
            )
        await bridging
    except CallError as exc:
        bridge_error: CallError | None = exc
    else:
        bridge_error = None
    bridged = a_call.record.bridged_at is not None
    a_record = await legs.finish(a_call)
    b_record = await legs.finish(b_call)
    if bridged:
        return AttemptResult(
            success=True,
            outcome=Outcome.ANSWERED,
            sip_code=b_record.sip_code,
            comment="A and B connected",
        )
    return _not_bridged(a_record, b_record, bridge_error)


async def _first_to_answer(calls: Sequence[Call], legs: _Legs) -> Call | None:
    """The first A leg to answer (ties go to dial order); every other A leg is ended."""
    winner: Call | None = None
    for call in calls:  # legs that settled at once need no waiting (and no task)
        if call.record.answered_at is not None:
            winner = call
            await legs.wait_answer(call)
            break
    if winner is None and len(calls) == 1:
        if await legs.wait_answer(calls[0]) is Outcome.ANSWERED:
            winner = calls[0]
    elif winner is None:
        winner = await _race_to_answer(calls, legs)
    for call in calls:
        if call is not winner:
            await legs.finish(call, LOSE_RACE)
    return winner


async def _race_to_answer(calls: Sequence[Call], legs: _Legs) -> Call | None:
    waiters = {asyncio.ensure_future(legs.wait_answer(call)): call for call in calls}
    winner: Call | None = None
    try:
        while waiters and winner is None:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in [waiter for waiter in waiters if waiter in done]:  # dial order
                call = waiters.pop(waiter)
                if waiter.result() is Outcome.ANSWERED and winner is None:
                    winner = call
                else:
                    await legs.finish(call, LOSE_RACE)
    finally:
        await _cancel(waiters)
    return winner


async def _answer_while_a_waits(b_call: Call, a_call: Call, legs: _Legs) -> Outcome | None:
    """B's outcome, or None if A hung up while B was ringing."""
    if b_call.record.answered_at is not None or b_call.record.ended_at is not None:
        return await legs.wait_answer(b_call)
    b_waiter = asyncio.ensure_future(legs.wait_answer(b_call))
    a_watcher = asyncio.ensure_future(a_call.wait_ended())
    try:
        await asyncio.wait((b_waiter, a_watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        await _cancel([a_watcher] if b_waiter.done() else [b_waiter, a_watcher])
    if b_waiter.cancelled():
        return None
    return b_waiter.result()


async def _cancel(tasks: Iterable[asyncio.Future[Any]]) -> None:
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _a_not_answered(records: Sequence[CallRecord]) -> AttemptResult:
    best = min(
        records, key=lambda record: a_leg_rank(record.outcome)
    )  # min keeps the first of equals: dial order
    prefix = "A leg: " if len(records) == 1 else f"none of {len(records)} A numbers answered: "
    return _not_answered(best, FailedLeg.A, prefix)


def _a_left(a_record: CallRecord, comment: str) -> AttemptResult:
    return AttemptResult(
        success=False,
        outcome=Outcome.ANSWERED,
        failed_leg=FailedLeg.A,
        sip_code=a_record.sip_code,
        hangup_cause=a_record.hangup_cause,
        comment=comment,
    )


def _not_bridged(
    a_record: CallRecord, b_record: CallRecord, error: CallError | None
) -> AttemptResult:
    if a_record.hangup_disposition == "recv_bye":
        return _a_left(a_record, "A hung up before the bridge")
    if b_record.hangup_disposition == "recv_bye":
        return AttemptResult(
            success=False,
            outcome=Outcome.ANSWERED,
            failed_leg=FailedLeg.B,
            sip_code=b_record.sip_code,
            hangup_cause=b_record.hangup_cause,
            comment="B hung up before the bridge",
        )
    return AttemptResult(
        success=False, outcome=Outcome.FAILED, comment=f"cannot bridge A and B: {error}"
    )


# --- legs ---------------------------------------------------------------------------------


class _OriginateFailed(Exception):
    def __init__(self, to_number: str, error: CallError, failed_leg: FailedLeg | None) -> None:
        super().__init__(f"cannot call {to_number}: {error}")
        self.to_number = to_number
        self.error = error
        self.failed_leg = failed_leg


class _Legs:
    """Every leg of the attempt: each is hung up, recorded and reported exactly once."""

    def __init__(self, ctx: AttemptContext) -> None:
        self._ctx = ctx
        self._calls: list[Call] = []
        self._finished: set[int] = set()

    @property
    def started(self) -> bool:
        return bool(self._calls)

    async def originate(
        self, request: OriginateRequest, failed_leg: FailedLeg | None = None
    ) -> Call:
        try:
            call = await self._ctx.dialer.originate(request)
        except CallError as exc:
            raise _OriginateFailed(request.to_number, exc, failed_leg) from exc
        self._calls.append(call)
        return call

    async def wait_answer(self, call: Call) -> Outcome:
        outcome = await call.wait_answer()
        if outcome is Outcome.ANSWERED:
            self._ctx.emit(EventType.CALL_ANSWERED, leg_event_data(call.record))
        return outcome

    async def finish(self, call: Call, cause: str = "NORMAL_CLEARING") -> CallRecord:
        """Hang the leg up if it is still up or ringing, wait for its end, record it once."""
        await call.hangup(cause)
        record = await call.wait_ended()
        self._record(call, record)
        return record

    async def finish_all(self) -> None:
        for call in self._calls:
            if id(call) in self._finished:
                continue
            try:
                await self.finish(call)
            except Exception:
                log.exception("could not hang up leg %s", call.record.leg_uuid)
                self._record(call, call.record)

    def _record(self, call: Call, record: CallRecord) -> None:
        if id(call) in self._finished:
            return
        self._finished.add(id(call))
        self._ctx.record_call(record)
        self._ctx.emit(EventType.CALL_ENDED, leg_event_data(record))


# --- small helpers ------------------------------------------------------------------------


_RUNNERS: dict[TaskKind, _Runner] = {
    TaskKind.MSG_CALL: _run_msg_call,
    TaskKind.IVR_CALL: _run_ivr_call,
    TaskKind.CALLBACK: _run_callback,
}


def _request(
    ctx: AttemptContext,
    to_number: str,
    caller_id_number: str | None,
    leg: Leg = Leg.MAIN,
    caller_id_name: str | None = None,
    variables: dict[str, str] | None = None,
) -> OriginateRequest:
    return OriginateRequest(
        to_number=to_number,
        caller_id_number=caller_id_number,
        caller_id_name=caller_id_name,
        ring_timeout_s=ctx.ring_timeout_s,
        leg=leg,
        call_uuid=ctx.call_uuid,
        variables=dict(variables or {}),
        queue_id=ctx.queue_id,
    )


def _for_attempt(numbers: Sequence[str], attempt: int) -> str | None:
    return numbers[attempt - 1] if 1 <= attempt <= len(numbers) else None


def _describe(outcome: Outcome, sip_code: int | None) -> str:
    return f"{outcome.value} (SIP {sip_code})" if sip_code else outcome.value


def _not_dialled(comment: str) -> AttemptResult:
    """No call was placed and none should be: the task cannot work as it is."""
    return AttemptResult(
        success=False, outcome=Outcome.FAILED, originated=False, retryable=False, comment=comment
    )


def _not_answered(
    record: CallRecord, failed_leg: FailedLeg | None = None, prefix: str = ""
) -> AttemptResult:
    outcome = record.outcome or Outcome.FAILED
    return AttemptResult(
        success=False,
        outcome=outcome,
        failed_leg=failed_leg,
        sip_code=record.sip_code,
        hangup_cause=record.hangup_cause,
        comment=prefix + _describe(outcome, record.sip_code),
    )


def _answered(
    record: CallRecord, comment: str, *, success: bool = True, retryable: bool = True
) -> AttemptResult:
    return AttemptResult(
        success=success,
        outcome=Outcome.ANSWERED,
        sip_code=record.sip_code,
        hangup_cause=record.hangup_cause,
        comment=comment,
        retryable=retryable,
    )


def _interrupted(record: CallRecord, error: CallError, hung_up_comment: str) -> AttemptResult:
    """An answered call whose media stopped: the callee hung up, or the media failed."""
    if record.hangup_disposition == "recv_bye":
        return _answered(record, hung_up_comment, success=False)
    return _answered(record, str(error), success=False, retryable=False)
