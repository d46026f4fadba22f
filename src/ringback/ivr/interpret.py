"""Run a validated IVR document on a call (async, against the Call / CallSession protocol).

Execution model (reference A3, DESIGN §6): the root's children run top to bottom; If, Cond and
Switch run one of their blocks in place; a Section reached in sequence runs like any block and
``GoTo`` continues at the start of the named Section (Sections sit directly under the root).
``Redirect`` and ``action`` / ``failureAction`` attributes name targets: a comma fallback list
where each entry is an ``http(s)`` URL (the document it answers replaces the current one), the
name of a Section of the current document (a jump), or a client-storage XML file (``file://``
prefix optional); the first entry that works wins. When the document ends the call is hung up.
Every executed element is appended to the trace. Loops are bounded: at most ``max_steps``
executed elements and ``max_jumps`` jumps (GoTo, action, Redirect, error handler).

All 22 elements run: Answer, Hangup, Play (a storage file, or an http(s) URL downloaded through
the guarded fetcher to a temporary file), Speak, Wait, Set, If/Then/Else, Cond/Clause/Else,
Switch/Case/Default (``expr`` and the legacy ``var``), Section, GoTo, GetDigits, GetInput (its
DTMF part: no speech recognizer is configured, so speech is not listened for and the trace
says so), GetJSON (http(s) GET/POST or a storage file; null on any failure), Redirect,
SetErrorHandler, Transfer (a phone number or SIP URI through the dialer; Basix users, groups,
voicemail and conference targets are not supported), Park, SendFax, ReceiveFax (documents
converted to fax pages first; a backend that cannot fax fails them with ``... is not
supported by the <name> backend``; the result in ``FaxResultCode`` and friends),
SendSMS (through a pluggable :class:`SmsSender`; by default recorded in the call record's
``detail["sms"]``), AddJob.

Not honoured, and said so in the trace: Play ``terminators`` and GetDigits ``playBeep`` (the
Call protocol cannot interrupt playback nor make tones), Transfer
``suppressPreAnswerAudio``. Not honoured silently: GetDigits/GetInput
``interdigitTimeout`` (the Call protocol has one timeout per collection, ``timeout``), and
GetInput ``speechTimeout`` / ``profanityFilter`` / ``language`` (no recognizer).

An error never escapes :meth:`Interpreter.run`: unless a SetErrorHandler target takes over, it
ends the call and is reported in :attr:`IvrRun.error` (a runtime IvrError) or
:attr:`IvrRun.call_error` (the call itself failed, e.g. the far end hung up).
:func:`ringback.ivr.runner.run_ivr` adds the answer-URL notifications.

This module is the interpreter loop: the run state, the step loop, the dispatch table, the
trace, targets (Redirect, action, failureAction, error handler) and error handling. The element
handlers live in :mod:`ringback.ivr.elements` (``flow``, ``media``, ``data``, ``telephony``);
the run's result and the services it uses in :mod:`ringback.ivr.run` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ringback.client_files import Storage, StorageError
from ringback.ivr.elements import data, flow, media, telephony
from ringback.ivr.elements.flow import HANGUP_CAUSES
from ringback.ivr.elements.media import LEGACY_VOICES, MAX_AUDIO_DOWNLOAD_BYTES
from ringback.ivr.elements.telephony import (
    DEFAULT_TRANSFER_RING_S,
    RECEIVE_FAX_TIMEOUT_S,
    RECEIVED_FAXES,
    TRANSFER_FAILURES,
)
from ringback.ivr.errors import IvrError
from ringback.ivr.expr import Expressions, render_value
from ringback.ivr.fax_check import missing_fax_file
from ringback.ivr.fetch import Fetcher, FetchError
from ringback.ivr.limits import LIMITS, IvrLimitError, IvrLimits, value_size
from ringback.ivr.parse import MAX_DOCUMENT_BYTES, Document, Node, parse
from ringback.ivr.run import (
    Continue,
    IvrRun,
    JobQueue,
    RecordingSmsSender,
    SmsSender,
    Stop,
    TraceEntry,
    call_variables,
    is_url,
)
from ringback.telephony.base import Call, CallError, Dialer

__all__ = [
    "DEFAULT_TRANSFER_RING_S",
    "HANGUP_CAUSES",
    "LEGACY_VOICES",
    "MAX_AUDIO_DOWNLOAD_BYTES",
    "MAX_JUMPS",
    "MAX_STEPS",
    "RECEIVED_FAXES",
    "RECEIVE_FAX_TIMEOUT_S",
    "TRANSFER_FAILURES",
    "Interpreter",
    "IvrRun",
    "JobQueue",
    "RecordingSmsSender",
    "SmsSender",
    "TraceEntry",
    "call_variables",
    "is_url",
    "static_problems",
]

MAX_STEPS = LIMITS.max_steps
MAX_JUMPS = LIMITS.max_jumps


def _after(failures: Sequence[str]) -> str:
    return f" (after {'; '.join(failures)})" if failures else ""


class Interpreter:
    """One run of a document on a call. The element handlers (:mod:`ringback.ivr.elements`)
    use its state (``call``, ``result``, ``document``, the services) and its helpers:
    :meth:`trace`, :meth:`render`, :meth:`evaluate`, :meth:`assign`, :meth:`fail`,
    :meth:`follow`, :meth:`block` / :meth:`execute`, :meth:`existing_file`."""

    def __init__(
        self,
        document: Document,
        call: Call,
        *,
        variables: Mapping[str, Any],
        now: Callable[[], datetime],
        storage: Storage | None = None,
        client_id: int | None = None,
        jobs: JobQueue | None = None,
        max_steps: int = MAX_STEPS,
        max_jumps: int = MAX_JUMPS,
        fetcher: Fetcher | None = None,
        dialer: Dialer | None = None,
        sms: SmsSender | None = None,
        answer_url: str | None = None,
        limits: IvrLimits = LIMITS,
    ) -> None:
        self.document = document
        self.call = call
        self.storage = storage
        self.client_id = client_id
        self.jobs = jobs
        self.fetcher = fetcher
        self.dialer = dialer
        self.sms: SmsSender = sms if sms is not None else RecordingSmsSender()
        self.max_steps = max_steps
        self.max_jumps = max_jumps
        self.limits = limits
        self.result = IvrRun(variables=dict(variables), answer_url=answer_url)
        cap = limits.max_value_chars
        self._sizes = {name: value_size(value, cap) for name, value in variables.items()}
        self._spoken = 0  # characters of Speak and SendSMS text so far
        self.call_variable_names = tuple(variables)
        self.expressions = Expressions(self.result.variables, now=now)
        self.error_handler: tuple[str, ...] | None = None
        self._steps = 0
        self._jumps = 0

    async def run(self) -> IvrRun:
        """Run the document; never raises for an IVR or call error (see the module docstring)."""
        index = 0
        try:
            while True:
                try:
                    body = self.document.body
                    while index < len(body):
                        await self.execute(body[index])
                        index += 1
                    break
                except Continue as go:
                    index = self._continue(go)
                except IvrError as exc:
                    if self.error_handler is None or isinstance(exc, IvrLimitError):
                        raise
                    index = self._continue(await self._handle_error(exc))
            self.trace(0, "end of document", "hang up", final=True)
            self.result.hung_up_by = "end of document"
            await self.call.hangup()
        except Stop:
            pass
        except IvrError as exc:
            self.result.error = exc
            self.trace(exc.line or 0, "error", exc.message, final=True)
        except CallError as exc:
            self.result.call_error = str(exc)
            self.trace(0, "call ended", str(exc), final=True)
        return self.result

    def form(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The parameters of an answer-URL request: the call variables (current values), the
        ``var_*`` of the Set variables, then ``extra``."""
        variables = self.result.variables
        params = {
            name: render_value(variables.get(name))
            for name in self.call_variable_names
            if name in variables
        }
        params.update(self.result.var_parameters())
        params.update(extra or {})
        return params

    # -- helpers -------------------------------------------------------------------------------

    def _continue(self, go: Continue) -> int:
        self.document = go.document
        self.result.answer_url = go.answer_url
        return go.index

    def trace(self, line: int, element: str, detail: str = "", *, final: bool = False) -> None:
        self.result.add_trace(TraceEntry(line, element, detail), self.limits, final=final)

    def assign(self, node: Node, name: str, value: Any) -> None:
        """Set variable ``name`` within the variable caps (:mod:`ringback.ivr.limits`)."""
        limits = self.limits
        size = value_size(value, limits.max_value_chars)
        if size > limits.max_value_chars:
            raise self.fail(
                node, f"The value of {name} is too large (over {limits.max_value_chars} "
                "characters or items)",
            )  # fmt: skip
        if name not in self._sizes and len(self._sizes) >= limits.max_variables:
            raise IvrLimitError(
                f"Cannot execute {node.tag}. The call has {limits.max_variables} variables "
                f"already; {name} is one too many",
                node.line,
            )
        total = sum(self._sizes.values()) - self._sizes.get(name, 0) + size
        if total > limits.max_variables_chars:
            raise IvrLimitError(
                f"Cannot execute {node.tag}. The variables would hold {total} characters "
                f"together, over the cap of {limits.max_variables_chars}",
                node.line,
            )
        self._sizes[name] = size
        self.result.variables[name] = value

    def spoken_text(self, node: Node, text: str) -> str:
        """``text`` of a Speak or SendSMS, within the text caps (:mod:`ringback.ivr.limits`)."""
        limits = self.limits
        if len(text) > limits.max_text_chars:
            raise self.fail(
                node, f"The text has {len(text)} characters, over the cap of "
                f"{limits.max_text_chars}",
            )  # fmt: skip
        self._spoken += len(text)
        if self._spoken > limits.max_spoken_chars:
            raise IvrLimitError(
                f"Cannot execute {node.tag}. The call's spoken and SMS text would exceed "
                f"{limits.max_spoken_chars} characters",
                node.line,
            )
        return text

    def render(self, node: Node, text: str) -> str:
        try:
            return self.expressions.render(text)
        except IvrError as exc:
            raise IvrError(f"Cannot execute {node.tag}. {exc.message}", node.line) from None

    def evaluate(self, node: Node, source: str) -> Any:
        try:
            return self.expressions.evaluate(source)
        except IvrError as exc:
            raise IvrError(f"Cannot execute {node.tag}. {exc.message}", node.line) from None

    def fail(self, node: Node, message: str) -> IvrError:
        return IvrError(f"Cannot execute {node.tag}. {message}", node.line)

    def count_jump(self, line: int) -> None:
        self._jumps += 1
        if self._jumps > self.max_jumps:
            raise IvrLimitError(
                f"The IVR jumped more than {self.max_jumps} times; stopped (endless loop?)", line
            )

    async def block(self, nodes: Sequence[Node]) -> None:
        for node in nodes:
            await self.execute(node)

    async def execute(self, node: Node) -> None:
        self._steps += 1
        if self._steps > self.max_steps:
            raise IvrLimitError(
                f"The IVR executed more than {self.max_steps} elements; stopped (endless loop?)",
                node.line,
            )
        await _HANDLERS[node.tag](self, node)

    def storage_path(self, node: Node, relpath: str) -> Path:
        if self.storage is None or self.client_id is None:
            raise self.fail(node, "No client storage is available here")
        try:
            return self.storage.resolve(self.client_id, relpath)
        except StorageError as exc:
            raise self.fail(node, str(exc)) from None

    def existing_file(self, node: Node, relpath: str) -> Path:
        path = self.storage_path(node, relpath)
        if not path.is_file():
            raise self.fail(node, f"File {relpath} doesn't exist")
        return path

    # -- targets: Redirect, action, failureAction, error handler -------------------------------

    async def follow(
        self,
        node: Node,
        targets: Sequence[str],
        label: str,
        *,
        method: str = "POST",
        extra: Mapping[str, str] | None = None,
    ) -> Continue:
        """Where the first working target leads (see the module docstring); IvrError if none."""
        self.count_jump(node.line)
        rendered = [self.render(node, target).strip() for target in targets]
        head = "to " if label == node.tag else f"{label}: "
        failures: list[str] = []
        index = 0
        while index < len(rendered):
            target = rendered[index]
            if is_url(target):
                urls = []
                while index < len(rendered) and is_url(rendered[index]):
                    urls.append(rendered[index])
                    index += 1
                loaded = await self._fetch_document(node, urls, head, method, extra, failures)
                if loaded is not None:
                    return loaded
                continue
            index += 1
            if target in self.document.sections:
                self.trace(node.line, node.tag, f"{head}Section {target}{_after(failures)}")
                section = self.document.sections[target]
                return Continue(self.document, section, self.result.answer_url)
            path = target.removeprefix("file://")
            if self.storage is None or self.client_id is None:
                failures.append(f"{target}: no Section of that name and no client storage")
                continue
            try:
                xml = self.storage.read_bytes(self.client_id, path, max_bytes=MAX_DOCUMENT_BYTES)
            except StorageError as exc:
                failures.append(f"{target}: no Section of that name, and {exc}")
                continue
            self.trace(node.line, node.tag, f"{head}storage file {path}{_after(failures)}")
            self.result.answer_url = None
            return Continue(self._load(node, xml, f"storage:{path}"), 0, None)
        raise self.fail(node, f"No {label} target could be loaded: " + "; ".join(failures))

    async def _fetch_document(
        self,
        node: Node,
        urls: Sequence[str],
        head: str,
        method: str,
        extra: Mapping[str, str] | None,
        failures: list[str],
    ) -> Continue | None:
        if self.fetcher is None:
            failures.append(f"{', '.join(urls)}: no HTTP fetcher is available here")
            return None
        try:
            reply = await self.fetcher.fetch(urls, method=method, form=self.form(extra))
        except FetchError as exc:
            failures.extend(exc.failures)
            return None
        failures.extend(reply.failures)
        self.trace(node.line, node.tag, f"{head}{method} {reply.url}{_after(failures)}")
        self.result.answer_url = reply.url  # a parse error below is reported to that URL
        return Continue(self._load(node, reply.body, reply.url), 0, reply.url)

    def _load(self, node: Node, xml: bytes, origin: str) -> Document:
        self.result.documents.append(origin)
        try:
            return parse(xml)
        except IvrError as exc:
            where = f" line {exc.line}" if exc.line else ""
            raise IvrError(
                f"The IVR document from {origin} is invalid:{where} {exc.message}", node.line
            ) from None

    async def _handle_error(self, exc: IvrError) -> Continue:
        assert self.error_handler is not None
        self.trace(exc.line or 0, "error handler", exc.message)
        self.result.variables["Error"] = exc.message
        handler = Node("SetErrorHandler", exc.line or 0, {})
        return await self.follow(
            handler, self.error_handler, "SetErrorHandler", extra={"Error": exc.message}
        )


#: every element, by tag, and its handler
_HANDLERS: dict[str, Callable[[Interpreter, Node], Awaitable[None]]] = {
    "Answer": flow.answer,
    "Hangup": flow.hangup,
    "Play": media.play,
    "Speak": media.speak,
    "Wait": media.wait,
    "Set": data.set_,
    "If": flow.if_,
    "Cond": flow.cond,
    "Switch": flow.switch,
    "Section": flow.section,
    "GoTo": flow.goto,
    "GetDigits": media.get_digits,
    "GetInput": media.get_input,
    "GetJSON": data.get_json,
    "Redirect": flow.redirect,
    "SetErrorHandler": flow.set_error_handler,
    "Transfer": telephony.transfer,
    "Park": media.park,
    "SendFax": telephony.send_fax,
    "ReceiveFax": telephony.receive_fax,
    "SendSMS": telephony.send_sms,
    "AddJob": telephony.add_job,
}


def static_problems(document: Document, storage: Storage, client_id: int) -> IvrError | None:
    """The first Play or SendFax whose file (a fixed path, no template) is missing: worth
    knowing before dialling anyone."""
    for node in document.root.walk():
        if node.tag == "Play" and node.text and "{{" not in node.text and "://" not in node.text:
            try:
                path = storage.resolve(client_id, node.text)
            except StorageError as exc:
                return IvrError(f"Cannot execute Play. {exc}", node.line)
            if not path.is_file():
                return IvrError(f"Cannot execute Play. File {node.text} doesn't exist", node.line)
    return missing_fax_file(document, storage, client_id)
