"""The IVR runner: run an IVR on a call — load the first document, run it, report to the
answer URL.

:func:`run_ivr` is what every caller of the IVR uses (ivr_call tasks, the simulator, inbound
calls): the first document comes inline, from client storage, or from an answer URL (a comma
fallback list, POSTed the call parameters form-encoded, reference A2); Redirect and ``action``
URLs then replace it as the call goes. It stores nothing: the caller keeps the returned
:class:`~ringback.ivr.interpret.IvrRun` (trace, variables, error, Transfer legs) as it likes.

Reporting (reference A2/A3): when the IVR ends with an error and the failing document came
from a URL, ``CallStatus=error`` and ``Error=<message>`` (with the call parameters and
``var_*``) are POSTed to that URL; when ``completed_url`` is configured, ``CallStatus=completed``
(with ``var_*`` and the fax result parameters, if a fax was sent or received) is POSTed to it
once the call has ended. A failed notification is noted in the trace and in
``IvrRun.notifications``; it does not change the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ringback.client_files import Storage, StorageError
from ringback.ivr.errors import IvrError
from ringback.ivr.fetch import Fetcher, FetchError
from ringback.ivr.interpret import (
    MAX_JUMPS,
    MAX_STEPS,
    Interpreter,
    IvrRun,
    JobQueue,
    SmsSender,
    TraceEntry,
    is_url,
)
from ringback.ivr.limits import LIMITS, IvrLimits
from ringback.ivr.parse import MAX_DOCUMENT_BYTES, Document, parse
from ringback.telephony.base import Call, Dialer

SOURCE_KINDS = ("xml", "storage", "url")


@dataclass(frozen=True, slots=True)
class IvrSource:
    """Where the first document comes from: ``xml`` (the text itself), ``storage`` (a path in
    the client's storage) or ``url`` (a comma-separated answer-URL fallback list)."""

    kind: Literal["xml", "storage", "url"]
    data: str

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"IvrSource kind must be one of {', '.join(SOURCE_KINDS)}")
        if not self.data.strip():
            raise ValueError("IvrSource data is empty")

    def urls(self) -> list[str]:
        return [part.strip() for part in self.data.split(",") if part.strip()]


@dataclass(slots=True)
class IvrEnvironment:
    """What an IVR session can use. ``variables`` are the call variables
    (:func:`~ringback.ivr.interpret.call_variables`); a service left ``None`` makes the
    elements that need it fail the call with a clear message (``fetcher`` None: no HTTP).
    ``now`` is the injected clock's (:class:`~ringback.clock.Clock`), never the wall clock."""

    variables: Mapping[str, Any]
    now: Callable[[], datetime]
    storage: Storage | None = None
    client_id: int | None = None
    jobs: JobQueue | None = None
    dialer: Dialer | None = None  # for Transfer
    fetcher: Fetcher | None = None
    completed_url: str | None = None  # comma fallback list for CallStatus=completed
    sms: SmsSender | None = None  # None: RecordingSmsSender
    max_steps: int = MAX_STEPS
    max_jumps: int = MAX_JUMPS
    limits: IvrLimits = LIMITS  # sizes: variables, texts, trace, stored detail


async def run_ivr(call: Call, source: IvrSource, *, env: IvrEnvironment) -> IvrRun:
    """Run the IVR of ``source`` on the answered ``call``; never raises for an IVR or call
    error (they are in the returned run). The call is hung up when this returns."""
    interpreter = _interpreter(call, None, env)
    try:
        interpreter.document = await _first_document(interpreter, source, env)
    except IvrError as exc:
        interpreter.result.error = exc
        interpreter.result.add_trace(
            TraceEntry(exc.line or 0, "error", exc.message), env.limits, final=True
        )
        return await _finish(interpreter, call, env)
    await interpreter.run()
    return await _finish(interpreter, call, env)


async def run_document(call: Call, document: Document, *, env: IvrEnvironment) -> IvrRun:
    """:func:`run_ivr` for a document already parsed."""
    interpreter = _interpreter(call, document, env)
    await interpreter.run()
    return await _finish(interpreter, call, env)


_EMPTY = parse("<IVR/>")


def _interpreter(call: Call, document: Document | None, env: IvrEnvironment) -> Interpreter:
    return Interpreter(
        document if document is not None else _EMPTY,
        call,
        variables=env.variables,
        storage=env.storage,
        client_id=env.client_id,
        jobs=env.jobs,
        now=env.now,
        max_steps=env.max_steps,
        max_jumps=env.max_jumps,
        fetcher=env.fetcher,
        dialer=env.dialer,
        sms=env.sms,
        limits=env.limits,
    )


async def _first_document(
    interpreter: Interpreter, source: IvrSource, env: IvrEnvironment
) -> Document:
    run = interpreter.result
    if source.kind == "xml":
        run.documents.append("inline")
        return parse(source.data)
    if source.kind == "storage":
        if env.storage is None or env.client_id is None:
            raise IvrError("Cannot read the IVR document: no client storage is available here")
        run.documents.append(f"storage:{source.data}")
        try:
            xml = env.storage.read_bytes(env.client_id, source.data, max_bytes=MAX_DOCUMENT_BYTES)
        except StorageError as exc:
            raise IvrError(f"Cannot read the IVR document: {exc}") from None
        return parse(xml)
    urls = source.urls()
    bad = [url for url in urls if not is_url(url)]
    if bad or not urls:
        raise IvrError(f"The answer URL list must hold http(s) URLs only, not {source.data!r}")
    if env.fetcher is None:
        raise IvrError("Cannot fetch the IVR document: no HTTP fetcher is available here")
    try:
        reply = await env.fetcher.fetch(urls, method="POST", form=interpreter.form())
    except FetchError as exc:
        raise IvrError(f"Cannot fetch the IVR document: {exc}") from None
    tried = "".join(f" (after {failure})" for failure in reply.failures)
    run.add_trace(TraceEntry(0, "answer URL", f"POST {reply.url}{tried}"), env.limits)
    run.documents.append(reply.url)
    run.answer_url = reply.url
    return parse(reply.body)


async def _finish(interpreter: Interpreter, call: Call, env: IvrEnvironment) -> IvrRun:
    run = interpreter.result
    await call.hangup()
    if run.trace_dropped:
        note = f"{run.trace_dropped} entries were left out of this trace"
        run.add_trace(TraceEntry(0, "trace full", note), env.limits, final=True)
    if run.error is not None and run.answer_url is not None:
        form = interpreter.form({"CallStatus": "error", "Error": run.error.message})
        await _notify(run, env, [run.answer_url], "CallStatus=error", form)
    if env.completed_url:
        run.variables["CallStatus"] = "completed"
        form = interpreter.form({"CallStatus": "completed", **run.fax})
        urls = [part.strip() for part in env.completed_url.split(",") if part.strip()]
        await _notify(run, env, urls, "CallStatus=completed", form)
    return run


async def _notify(
    run: IvrRun, env: IvrEnvironment, urls: list[str], what: str, form: dict[str, str]
) -> None:
    if env.fetcher is None:
        note = f"{what} not sent: no HTTP fetcher is available here"
    else:
        try:
            reply = await env.fetcher.fetch(urls, method="POST", form=form)
        except FetchError as exc:
            note = f"{what} not delivered: {exc}"
        else:
            note = f"{what} sent to {reply.url} (HTTP {reply.status})"
    run.notifications.append(note)
    run.add_trace(TraceEntry(0, "notify", note), env.limits, final=True)
