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
voicemail and conference targets are not supported), Park, SendFax, ReceiveFax (a backend that
cannot fax, like the simulator, fails them with ``... is not supported by the sim backend``),
SendSMS (through a pluggable :class:`SmsSender`; by default recorded in the call record's
``detail["sms"]``), AddJob.

Not honoured, and said so in the trace: Play ``terminators`` and GetDigits ``playBeep`` (the
Call protocol cannot interrupt playback nor make tones), SendFax ``header`` (not passed to the
backend), Transfer ``suppressPreAnswerAudio``. Not honoured silently: GetDigits/GetInput
``interdigitTimeout`` (the Call protocol has one timeout per collection, ``timeout``), and
GetInput ``speechTimeout`` / ``profanityFilter`` / ``language`` (no recognizer).

An error never escapes :meth:`Interpreter.run`: unless a SetErrorHandler target takes over, it
ends the call and is reported in :attr:`IvrRun.error` (a runtime IvrError) or
:attr:`IvrRun.call_error` (the call itself failed, e.g. the far end hung up).
:func:`ringback.ivr.session.run_ivr` adds the answer-URL notifications.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlsplit

from ringback.domain.model import Leg, Outcome
from ringback.ivr.errors import IvrError, IvrNotSupported
from ringback.ivr.expr import Expressions, Flag, render_value
from ringback.ivr.fetch import Fetcher, FetchError
from ringback.ivr.limits import LIMITS, IvrLimitError, IvrLimits, shorten, value_size
from ringback.ivr.parse import MAX_AUDIO_CHILDREN, MAX_DOCUMENT_BYTES, Document, Node, parse
from ringback.service import InvalidInput
from ringback.storage import Storage, StorageError
from ringback.telephony.base import (
    Call,
    CallError,
    CallNotSupported,
    CallRecord,
    CannotPlay,
    Dialer,
    OriginateRequest,
)

MAX_STEPS = LIMITS.max_steps
MAX_JUMPS = LIMITS.max_jumps
MAX_AUDIO_DOWNLOAD_BYTES = 16 * 1024 * 1024
RECEIVE_FAX_TIMEOUT_S = 600.0
RECEIVED_FAXES = "received_faxes"
DEFAULT_TRANSFER_RING_S = 30

HANGUP_CAUSES: Mapping[str | None, str] = {
    None: "NORMAL_CLEARING",
    "rejected": "CALL_REJECTED",
    "busy": "USER_BUSY",
}
#: legacy AI-Talk voice names and the Google voices that replace them (reference A8.18)
_FEMALE = ("nozomi", "sumire", "kaho", "maki", "nanako", "araki", "anzu")
_MALE = ("seiji", "osamu", "hiroshi", "koutaro")
LEGACY_VOICES: Mapping[str, str] = {
    **dict.fromkeys(_FEMALE, "ja-JP-Wavenet-B"),
    **dict.fromkeys(_MALE, "ja-JP-Wavenet-D"),
}
#: TransferFailureReason for each way the new leg can fail
TRANSFER_FAILURES: Mapping[Outcome, str] = {
    Outcome.BUSY: "busy",
    Outcome.NO_ANSWER: "no_answer",
    Outcome.REJECTED: "rejected",
    Outcome.INVALID_NUMBER: "invalid_number",
    Outcome.CANCELED: "canceled",
}
_PHONE_NUMBER = re.compile(r"\+?[0-9*#]{1,32}\Z")
_SIP_URI = re.compile(r"sips?:[^\s@]+@[^\s@]+\Z")


class JobQueue(Protocol):
    """Where AddJob puts jobs: :class:`ringback.service.TaskService` is one."""

    async def add_jobs(self, client_id: int, items: Sequence[Any]) -> list[int]: ...


class SmsSender(Protocol):
    """Where SendSMS sends its messages."""

    async def send_sms(self, call: Call, *, from_number: str, to_number: str, text: str) -> None:
        """Send the SMS (or raise any Exception: SendSMS then fails the call with its message)."""
        ...


class RecordingSmsSender:
    """The default :class:`SmsSender`: sends nothing, records the SMS in the call record
    (``record.detail["sms"]``, a list of ``{"from", "to", "text"}``)."""

    async def send_sms(self, call: Call, *, from_number: str, to_number: str, text: str) -> None:
        sent = call.record.detail.setdefault("sms", [])
        sent.append({"from": from_number, "to": to_number, "text": text})


@dataclass(frozen=True, slots=True)
class TraceEntry:
    line: int
    element: str
    detail: str = ""

    def __str__(self) -> str:
        return f"line {self.line} {self.element}" + (f": {self.detail}" if self.detail else "")


@dataclass(slots=True)
class IvrRun:
    """What happened: the trace, the variables at the end, and how it ended."""

    trace: list[TraceEntry] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    set_variables: list[str] = field(default_factory=list)  # echoed as var_<name>
    jobs_added: list[int] = field(default_factory=list)
    error: IvrError | None = None
    call_error: str | None = None
    hung_up_by: str | None = None  # "Hangup", "end of document", "Transfer"
    # the URL the current document came from (errors are reported there); None: not a URL
    answer_url: str | None = None
    documents: list[str] = field(default_factory=list)  # where each loaded document came from
    fax: dict[str, str] = field(default_factory=dict)  # FaxOperation, FaxFilePath, ...
    other_legs: list[CallRecord] = field(default_factory=list)  # Transfer legs, ended
    notifications: list[str] = field(default_factory=list)  # answer-URL POSTs and their fate
    trace_bytes: int = 0  # the size of the trace kept so far (its entries as text, UTF-8)
    trace_dropped: int = 0  # entries left out once the trace was full (see limits)

    @property
    def ok(self) -> bool:
        return self.error is None and self.call_error is None

    def add_trace(
        self, entry: TraceEntry, limits: IvrLimits = LIMITS, *, final: bool = False
    ) -> None:
        """Append ``entry`` within the trace caps (:mod:`ringback.ivr.limits`): its detail is
        shortened; once the trace is full, entries are left out (one entry says so) unless
        ``final`` (how the call ended)."""
        if len(entry.detail) > limits.max_trace_detail_chars:
            detail = shorten(entry.detail, limits.max_trace_detail_chars)
            entry = TraceEntry(entry.line, entry.element, detail)
        size = len(str(entry).encode())
        full = (
            self.trace_dropped > 0
            or len(self.trace) >= limits.max_trace_entries
            or self.trace_bytes + size > limits.max_trace_bytes
        )
        if full and not final:
            if not self.trace_dropped:
                self.trace.append(
                    TraceEntry(
                        entry.line, "trace full",
                        f"later entries are left out (cap: {limits.max_trace_entries} entries, "
                        f"{limits.max_trace_bytes} bytes), except how the call ended",
                    )
                )  # fmt: skip
            self.trace_dropped += 1
            return
        self.trace.append(entry)
        self.trace_bytes += size

    def trace_lines(self) -> list[str]:
        """The trace as text, one line per entry (what call records keep)."""
        return [str(entry) for entry in self.trace]

    def var_parameters(self) -> dict[str, str]:
        """The ``var_<name>`` parameters of the answer-URL protocol for the Set variables."""
        return {f"var_{name}": render_value(self.variables[name]) for name in self.set_variables}


def call_variables(
    *,
    call_uuid: str,
    direction: str,
    calling_number: str,
    called_number: str,
    status: str = "in-progress",
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The predefined call variables (reference A2/A6), all strings.

    ``extra`` overrides: ``CallingNumber`` / ``CalledNumber`` there also set their legacy
    aliases (``From``; ``To`` and ``DNIS``).
    """
    extra = dict(extra or {})
    calling_number = extra.pop("CallingNumber", calling_number)
    called_number = extra.pop("CalledNumber", called_number)
    variables: dict[str, Any] = {
        "CallUUID": call_uuid,
        "CallStatus": status,
        "Direction": direction,
        "CallingNumber": calling_number,
        "CalledNumber": called_number,
        "From": calling_number,
        "To": called_number,
        "DNIS": called_number,
        "Anonymous": "false",
        "Digits": "",
    }
    variables.update(extra)
    return variables


def _after(failures: Sequence[str]) -> str:
    return f" (after {'; '.join(failures)})" if failures else ""


def is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


class _Continue(Exception):
    """Go on at ``index`` of ``document`` (a jump, or a newly loaded document)."""

    def __init__(self, document: Document, index: int, answer_url: str | None) -> None:
        self.document = document
        self.index = index
        self.answer_url = answer_url


class _Stop(Exception):
    pass


class Interpreter:
    def __init__(
        self,
        document: Document,
        call: Call,
        *,
        variables: Mapping[str, Any],
        storage: Storage | None = None,
        client_id: int | None = None,
        jobs: JobQueue | None = None,
        now: Callable[[], datetime] | None = None,
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
                        await self._execute(body[index])
                        index += 1
                    break
                except _Continue as go:
                    index = self._continue(go)
                except IvrError as exc:
                    if self.error_handler is None or isinstance(exc, IvrLimitError):
                        raise
                    index = self._continue(await self._handle_error(exc))
            self._trace(0, "end of document", "hang up", final=True)
            self.result.hung_up_by = "end of document"
            await self.call.hangup()
        except _Stop:
            pass
        except IvrError as exc:
            self.result.error = exc
            self._trace(exc.line or 0, "error", exc.message, final=True)
        except CallError as exc:
            self.result.call_error = str(exc)
            self._trace(0, "call ended", str(exc), final=True)
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

    def _continue(self, go: _Continue) -> int:
        self.document = go.document
        self.result.answer_url = go.answer_url
        return go.index

    def _trace(self, line: int, element: str, detail: str = "", *, final: bool = False) -> None:
        self.result.add_trace(TraceEntry(line, element, detail), self.limits, final=final)

    def _assign(self, node: Node, name: str, value: Any) -> None:
        """Set variable ``name`` within the variable caps (:mod:`ringback.ivr.limits`)."""
        limits = self.limits
        size = value_size(value, limits.max_value_chars)
        if size > limits.max_value_chars:
            raise self._fail(
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

    def _spoken_text(self, node: Node, text: str) -> str:
        """``text`` of a Speak or SendSMS, within the text caps (:mod:`ringback.ivr.limits`)."""
        limits = self.limits
        if len(text) > limits.max_text_chars:
            raise self._fail(
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

    def _render(self, node: Node, text: str) -> str:
        try:
            return self.expressions.render(text)
        except IvrError as exc:
            raise IvrError(f"Cannot execute {node.tag}. {exc.message}", node.line) from None

    def _evaluate(self, node: Node, source: str) -> Any:
        try:
            return self.expressions.evaluate(source)
        except IvrError as exc:
            raise IvrError(f"Cannot execute {node.tag}. {exc.message}", node.line) from None

    def _fail(self, node: Node, message: str) -> IvrError:
        return IvrError(f"Cannot execute {node.tag}. {message}", node.line)

    def _count_jump(self, line: int) -> None:
        self._jumps += 1
        if self._jumps > self.max_jumps:
            raise IvrLimitError(
                f"The IVR jumped more than {self.max_jumps} times; stopped (endless loop?)", line
            )

    async def _block(self, nodes: Sequence[Node]) -> None:
        for node in nodes:
            await self._execute(node)

    async def _execute(self, node: Node) -> None:
        self._steps += 1
        if self._steps > self.max_steps:
            raise IvrLimitError(
                f"The IVR executed more than {self.max_steps} elements; stopped (endless loop?)",
                node.line,
            )
        await _HANDLERS[node.tag](self, node)

    def _storage_path(self, node: Node, relpath: str) -> Path:
        if self.storage is None or self.client_id is None:
            raise self._fail(node, "No client storage is available here")
        try:
            return self.storage.resolve(self.client_id, relpath)
        except StorageError as exc:
            raise self._fail(node, str(exc)) from None

    def _existing_file(self, node: Node, relpath: str) -> Path:
        path = self._storage_path(node, relpath)
        if not path.is_file():
            raise self._fail(node, f"File {relpath} doesn't exist")
        return path

    # -- targets: Redirect, action, failureAction, error handler -------------------------------

    async def _follow(
        self,
        node: Node,
        targets: Sequence[str],
        label: str,
        *,
        method: str = "POST",
        extra: Mapping[str, str] | None = None,
    ) -> _Continue:
        """Where the first working target leads (see the module docstring); IvrError if none."""
        self._count_jump(node.line)
        rendered = [self._render(node, target).strip() for target in targets]
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
                self._trace(node.line, node.tag, f"{head}Section {target}{_after(failures)}")
                section = self.document.sections[target]
                return _Continue(self.document, section, self.result.answer_url)
            path = target.removeprefix("file://")
            if self.storage is None or self.client_id is None:
                failures.append(f"{target}: no Section of that name and no client storage")
                continue
            try:
                xml = self.storage.read_bytes(self.client_id, path, max_bytes=MAX_DOCUMENT_BYTES)
            except StorageError as exc:
                failures.append(f"{target}: no Section of that name, and {exc}")
                continue
            self._trace(node.line, node.tag, f"{head}storage file {path}{_after(failures)}")
            self.result.answer_url = None
            return _Continue(self._load(node, xml, f"storage:{path}"), 0, None)
        raise self._fail(node, f"No {label} target could be loaded: " + "; ".join(failures))

    async def _fetch_document(
        self,
        node: Node,
        urls: Sequence[str],
        head: str,
        method: str,
        extra: Mapping[str, str] | None,
        failures: list[str],
    ) -> _Continue | None:
        if self.fetcher is None:
            failures.append(f"{', '.join(urls)}: no HTTP fetcher is available here")
            return None
        try:
            reply = await self.fetcher.fetch(urls, method=method, form=self.form(extra))
        except FetchError as exc:
            failures.extend(exc.failures)
            return None
        failures.extend(reply.failures)
        self._trace(node.line, node.tag, f"{head}{method} {reply.url}{_after(failures)}")
        self.result.answer_url = reply.url  # a parse error below is reported to that URL
        return _Continue(self._load(node, reply.body, reply.url), 0, reply.url)

    def _load(self, node: Node, xml: bytes, origin: str) -> Document:
        self.result.documents.append(origin)
        try:
            return parse(xml)
        except IvrError as exc:
            where = f" line {exc.line}" if exc.line else ""
            raise IvrError(
                f"The IVR document from {origin} is invalid:{where} {exc.message}", node.line
            ) from None

    async def _handle_error(self, exc: IvrError) -> _Continue:
        assert self.error_handler is not None
        self._trace(exc.line or 0, "error handler", exc.message)
        self.result.variables["Error"] = exc.message
        handler = Node("SetErrorHandler", exc.line or 0, {})
        return await self._follow(
            handler, self.error_handler, "SetErrorHandler", extra={"Error": exc.message}
        )

    # -- elements ------------------------------------------------------------------------------

    async def _answer(self, node: Node) -> None:
        if self.call.record.answered_at is not None:
            self._trace(node.line, "Answer", "already answered")
            return
        outcome = await self.call.wait_answer()
        self._trace(node.line, "Answer", f"answered ({outcome.value})")

    async def _hangup(self, node: Node) -> None:
        reason = node.attrs.get("reason")
        self._trace(node.line, "Hangup", reason or "normal")
        self.result.hung_up_by = "Hangup"
        await self.call.hangup(HANGUP_CAUSES[reason])
        raise _Stop

    async def _play_file(self, node: Node, relpath: str, loop: int = 1) -> None:
        if not is_url(relpath):
            if "://" in relpath and not relpath.startswith("file://"):
                raise self._fail(
                    node, f"Only http, https and storage files can be played, not {relpath}"
                )
            relpath = relpath.removeprefix("file://")
            try:
                await self.call.play(self._existing_file(node, relpath), loop=loop, name=relpath)
            except CannotPlay as exc:  # named by its storage name, never the server's path
                raise self._fail(node, f"Cannot play {relpath}: {exc.reason}") from None
            return
        if self.fetcher is None:
            raise self._fail(node, "No HTTP fetcher is available here to download a URL")
        try:
            reply = await self.fetcher.fetch(
                [relpath], method="GET", max_bytes=MAX_AUDIO_DOWNLOAD_BYTES
            )
        except FetchError as exc:
            raise self._fail(node, f"Cannot download {relpath}: {exc}") from None
        suffix = PurePosixPath(urlsplit(relpath).path).suffix[:8] or ".wav"
        handle, name = tempfile.mkstemp(prefix="ringback-play-", suffix=suffix)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(reply.body)
            await self.call.play(Path(name), loop=loop, name=relpath)
        except CannotPlay as exc:  # named by its URL, not the temporary file
            raise self._fail(node, f"Cannot play {relpath}: {exc.reason}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)

    async def _play(self, node: Node) -> None:
        relpath = self._render(node, node.text or "")
        loop = node.attrs["loop"]
        detail = relpath + (f" x{loop}" if loop > 1 else "")
        if "terminators" in node.attrs:
            detail += " (terminators not honoured: the call cannot interrupt playback)"
        self._trace(node.line, "Play", detail)
        await self._play_file(node, relpath, loop)

    async def _speak(self, node: Node) -> None:
        text = self._spoken_text(node, self._render(node, node.text or ""))
        voice = node.attrs.get("voice")
        voice = LEGACY_VOICES.get(voice, voice) if voice else None
        language = node.attrs["language"]
        loop = node.attrs["loop"]
        self._trace(node.line, "Speak", repr(text) + (f" x{loop}" if loop > 1 else ""))
        await self.call.speak(text, language=language, voice=voice, loop=loop)

    async def _wait(self, node: Node) -> None:
        seconds = node.attrs["length"]
        self._trace(node.line, "Wait", f"{seconds:g} s")
        await self.call.wait(seconds)

    async def _set(self, node: Node) -> None:
        name = node.attrs["var"]
        if "expr" in node.attrs:
            value = self._evaluate(node, node.attrs["expr"])
        else:
            value = self._render(node, node.attrs["val"])
        self._assign(node, name, value)
        if name not in self.result.set_variables:
            self.result.set_variables.append(name)
        shown = (
            value
            if not isinstance(value, str)
            else shorten(value, self.limits.max_trace_detail_chars)
        )
        self._trace(node.line, "Set", f"{name} = {shown!r}")

    async def _if(self, node: Node) -> None:
        truth = bool(self._evaluate(node, node.attrs["expr"]))
        self._trace(node.line, "If", f"{node.attrs['expr']} -> {str(truth).lower()}")
        wanted = "Then" if truth else "Else"
        for child in node.children:
            if child.tag == wanted:
                await self._block(child.children)

    async def _cond(self, node: Node) -> None:
        for child in node.children:
            if child.tag == "Clause":
                if bool(self._evaluate(child, child.attrs["expr"])):
                    self._trace(child.line, "Cond", f"clause {child.attrs['expr']} is true")
                    await self._block(child.children)
                    return
            else:
                self._trace(child.line, "Cond", "no clause is true: Else")
                await self._block(child.children)
                return
        self._trace(node.line, "Cond", "no clause is true")

    async def _switch(self, node: Node) -> None:
        if "expr" in node.attrs:
            value = self._evaluate(node, node.attrs["expr"])
        else:
            value = self.result.variables.get(node.attrs["var"])
        text = render_value(value)
        for child in node.children:
            if child.tag == "Default" or child.attrs["val"] == text:
                which = "Default" if child.tag == "Default" else f"Case {text!r}"
                self._trace(node.line, "Switch", f"{text!r}: {which}")
                await self._block(child.children)
                return
        self._trace(node.line, "Switch", f"{text!r}: no Case")

    async def _section(self, node: Node) -> None:
        self._trace(node.line, "Section", node.attrs["name"])
        await self._block(node.children)

    async def _goto(self, node: Node) -> None:
        self._count_jump(node.line)
        section = node.text or ""
        self._trace(node.line, "GoTo", section)
        raise _Continue(self.document, self.document.sections[section], self.result.answer_url)

    async def _audio(self, nodes: Sequence[Node]) -> None:
        for child in nodes:
            await self._execute(child)

    async def _get_digits(self, node: Node) -> None:
        await self._collect(node)

    async def _get_input(self, node: Node) -> None:
        self._trace(
            node.line,
            "GetInput",
            "speech input not supported (no speech recognizer is configured): DTMF only",
        )
        await self._collect(node)

    async def _collect(self, node: Node) -> None:
        """GetDigits, and the DTMF part of GetInput."""
        attrs = node.attrs
        tries = attrs["maxTries"]
        if "retries" in attrs and tries == 1:
            tries = attrs["retries"]  # the deprecated alias
        audio = node.children[:MAX_AUDIO_CHILDREN]
        prompt = [child for child in audio if child.attrs.get("purpose") != "alert"]
        alert = [child for child in audio if child.attrs.get("purpose") == "alert"]
        valid = attrs["validDigits"]
        digits = ""
        for attempt in range(1, tries + 1):
            await self._audio(prompt)
            if attrs["playBeep"]:
                self._trace(node.line, node.tag, "beep not played: the call cannot make tones")
            pressed = await self.call.collect_digits(
                max_digits=attrs["numDigits"],
                timeout_s=float(attrs["timeout"]),
                finish_on_key=attrs["finishOnKey"],
            )
            if pressed and all(key in valid for key in pressed):
                digits = pressed
                self._trace(node.line, node.tag, f"try {attempt}: {pressed!r}")
                break
            if pressed:
                self._trace(node.line, node.tag, f"try {attempt}: invalid {pressed!r}")
                if alert:
                    await self._audio(alert)
                elif "invalidDigitsSound" in attrs:
                    sound = self._render(node, attrs["invalidDigitsSound"])
                    await self._play_file(node, sound)
            else:
                self._trace(node.line, node.tag, f"try {attempt}: no input")
        self.result.variables["Digits"] = digits
        if digits and "action" in attrs:
            raise await self._follow(node, attrs["action"], "action", extra={"Digits": digits})

    async def _redirect(self, node: Node) -> None:
        targets = [part.strip() for part in (node.text or "").split(",") if part.strip()]
        raise await self._follow(node, targets, "Redirect", method=node.attrs["method"])

    async def _set_error_handler(self, node: Node) -> None:
        text = self._render(node, node.text or "")
        targets = tuple(part.strip() for part in text.split(",") if part.strip())
        if not targets:
            raise self._fail(node, "The error handler names no target")
        self.error_handler = targets
        self._trace(node.line, "SetErrorHandler", ", ".join(targets))

    async def _get_json(self, node: Node) -> None:
        name = node.attrs["var"]
        url = self._render(node, node.attrs["url"]).strip()
        method = node.attrs["method"]
        value: Any = None
        problem = ""
        data: bytes | None = None
        if is_url(url):
            if self.fetcher is None:
                problem = f"{url}: no HTTP fetcher is available here"
            else:
                form = self.form() if method == "POST" else None
                try:
                    data = (await self.fetcher.fetch([url], method=method, form=form)).body
                except FetchError as exc:
                    problem = str(exc)
        elif url.startswith("file://") or "://" not in url:
            path = url.removeprefix("file://")
            if self.storage is None or self.client_id is None:
                problem = f"{url}: no client storage is available here"
            else:
                try:
                    data = self.storage.read_bytes(self.client_id, path, max_bytes=1024 * 1024)
                except StorageError as exc:
                    problem = f"{url}: {exc}"
        else:
            problem = f"{url}: only http, https and file URLs are supported"
        if data is not None:
            try:
                value = json.loads(data)
            except (ValueError, RecursionError):
                problem = f"{url}: the reply is not JSON"
        if value_size(value, self.limits.max_value_chars) > self.limits.max_value_chars:
            problem = f"{url}: the data is larger than {self.limits.max_value_chars} characters"
            value = None
        self._assign(node, name, value)
        source = f"{method} {url}" if is_url(url) else url
        if problem:
            self._trace(node.line, "GetJSON", f"{name} = null ({problem})")
        else:
            shown = render_value(value)
            shown = shown if len(shown) <= 80 else shown[:80] + "…"
            self._trace(node.line, "GetJSON", f"{name} = {shown} ({source})")

    async def _transfer(self, node: Node) -> None:
        attrs = node.attrs
        target = self._render(node, node.text or "").strip()
        if not (_PHONE_NUMBER.match(target) or _SIP_URI.match(target)):
            raise IvrNotSupported(
                f"Cannot execute Transfer. Transferring to {target!r} is not supported: only "
                "phone numbers and SIP URIs are (Basix users, groups, voicemail and conference "
                "rooms are not)",
                node.line,
            )
        if self.dialer is None:
            raise self._fail(node, "No dialer is available here to place the transfer")
        variables = self.result.variables
        if "callingNumber" in attrs:
            caller_id = self._render(node, attrs["callingNumber"]).strip()
        elif attrs["relayReceivedCallingNumber"]:
            caller_id = str(variables.get("CallingNumber", ""))
        else:  # the PBX's own number on this call
            own = "CalledNumber" if variables.get("Direction") == "inbound" else "CallingNumber"
            caller_id = str(variables.get(own, ""))
        ring_s = attrs.get("answerTimeout", DEFAULT_TRANSFER_RING_S)
        detail = f"calling {target} from {caller_id or 'the default caller id'}, ring {ring_s} s"
        if attrs["suppressPreAnswerAudio"]:
            detail += " (suppressPreAnswerAudio not honoured)"
        self._trace(node.line, "Transfer", detail)
        try:
            leg = await self.dialer.originate(
                OriginateRequest(
                    to_number=target,
                    caller_id_number=caller_id or None,
                    ring_timeout_s=float(ring_s),
                    leg=Leg.TRANSFER,
                    call_uuid=self.call.record.call_uuid,
                )
            )
        except CallError as exc:
            outcome: Outcome = Outcome.FAILED
            self._trace(node.line, "Transfer", f"cannot call {target}: {exc}")
        else:
            try:
                outcome = await leg.wait_answer()
                if outcome is Outcome.ANSWERED:
                    self._trace(node.line, "Transfer", "answered: bridged")
                    await self.call.bridge(leg)
                    self._trace(node.line, "Transfer", "the bridged call ended")
                    self.result.hung_up_by = "Transfer"
                    raise _Stop
            finally:
                await leg.hangup()
                self.result.other_legs.append(await leg.wait_ended())
        reason = TRANSFER_FAILURES.get(outcome, "failed")
        variables["TransferFailureReason"] = reason
        self._trace(node.line, "Transfer", f"failed: {reason}")
        if "failureAction" in attrs:
            raise await self._follow(
                node, attrs["failureAction"], "failureAction",
                extra={"TransferFailureReason": reason},
            )  # fmt: skip

    async def _park(self, node: Node) -> None:
        seconds = node.attrs["timeout"]
        self._trace(node.line, "Park", f"up to {seconds} s")
        try:
            await self.call.park(float(seconds))
        except CallNotSupported as exc:
            raise IvrNotSupported(f"Cannot execute Park. {exc}", node.line) from None
        self._trace(node.line, "Park", "timed out: the call goes on")

    def _fax_done(self, operation: str, relpath: str) -> None:
        self.result.fax.update(
            FaxOperation=operation, FaxFilePath=relpath, FaxResultCode="0", FaxResultText="OK"
        )

    async def _send_fax(self, node: Node) -> None:
        relpath = self._render(node, node.text or "").strip()
        path = self._existing_file(node, relpath)
        detail = relpath
        if "header" in node.attrs:
            detail += f" (header {node.attrs['header']!r} not passed to the backend)"
        self._trace(node.line, "SendFax", detail)
        try:
            await self.call.send_fax(path)
        except CallNotSupported as exc:
            raise IvrNotSupported(f"Cannot execute SendFax. {exc}", node.line) from None
        self._fax_done("transmission", relpath)
        self._trace(node.line, "SendFax", "sent")
        if "action" in node.attrs:
            raise await self._follow(node, node.attrs["action"], "action", extra=self.result.fax)

    async def _receive_fax(self, node: Node) -> None:
        relpath = f"{RECEIVED_FAXES}/{self._render(node, node.text or '').strip()}"
        self._storage_path(node, relpath)  # refuse a bad path before the fax comes in
        self._trace(node.line, "ReceiveFax", relpath)
        try:
            data = await self.call.receive_fax(RECEIVE_FAX_TIMEOUT_S)
        except CallNotSupported as exc:
            raise IvrNotSupported(f"Cannot execute ReceiveFax. {exc}", node.line) from None
        assert self.storage is not None and self.client_id is not None
        try:
            self.storage.write_bytes(self.client_id, relpath, data)
        except StorageError as exc:
            raise self._fail(node, str(exc)) from None
        self._fax_done("reception", relpath)
        self._trace(node.line, "ReceiveFax", f"received {len(data)} bytes")
        if "action" in node.attrs:
            raise await self._follow(node, node.attrs["action"], "action", extra=self.result.fax)

    async def _send_sms(self, node: Node) -> None:
        variables = self.result.variables
        inbound = variables.get("Direction") == "inbound"
        own = str(variables.get("CalledNumber" if inbound else "CallingNumber", ""))
        far = str(variables.get("CallingNumber" if inbound else "CalledNumber", ""))
        sender = (
            self._render(node, node.attrs["callingNumber"])
            if "callingNumber" in node.attrs
            else own
        )
        to = self._render(node, node.attrs["calledNumber"]) if "calledNumber" in node.attrs else far
        text = self._spoken_text(node, self._render(node, node.text or ""))
        self._trace(node.line, "SendSMS", f"to {to} from {sender}: {text!r}")
        try:
            await self.sms.send_sms(self.call, from_number=sender, to_number=to, text=text)
        except Exception as exc:
            raise self._fail(node, f"The SMS was not sent: {exc}") from None

    async def _add_job(self, node: Node) -> None:
        if self.jobs is None or self.client_id is None:
            raise IvrError("Cannot execute AddJob. No job queue is available here", node.line)
        text = self._render(node, node.text or "")
        added = False
        try:
            job = json.loads(text)
            if not isinstance(job, dict):
                raise ValueError("the job must be a JSON object")
            [task_id] = await self.jobs.add_jobs(self.client_id, [job])
        except ValueError as exc:  # JSON errors and InvalidInput
            detail = (
                str(exc).replace("\n", ";")
                if not isinstance(exc, InvalidInput)
                else (
                    exc.message
                    + "".join(
                        f"; {'.'.join(str(p) for p in d['loc'][1:])}: {d['msg']}"
                        for d in exc.details
                    )
                )
            )
            self._trace(node.line, "AddJob", f"not added: {detail}")
        else:
            added = True
            self.result.jobs_added.append(task_id)
            self._trace(node.line, "AddJob", f"task {task_id} added")
        self.result.variables["JobAdded"] = Flag(added)


_HANDLERS: dict[str, Callable[[Interpreter, Node], Any]] = {
    "Answer": Interpreter._answer,
    "Hangup": Interpreter._hangup,
    "Play": Interpreter._play,
    "Speak": Interpreter._speak,
    "Wait": Interpreter._wait,
    "Set": Interpreter._set,
    "If": Interpreter._if,
    "Cond": Interpreter._cond,
    "Switch": Interpreter._switch,
    "Section": Interpreter._section,
    "GoTo": Interpreter._goto,
    "GetDigits": Interpreter._get_digits,
    "GetInput": Interpreter._get_input,
    "GetJSON": Interpreter._get_json,
    "Redirect": Interpreter._redirect,
    "SetErrorHandler": Interpreter._set_error_handler,
    "Transfer": Interpreter._transfer,
    "Park": Interpreter._park,
    "SendFax": Interpreter._send_fax,
    "ReceiveFax": Interpreter._receive_fax,
    "SendSMS": Interpreter._send_sms,
    "AddJob": Interpreter._add_job,
}


def static_problems(document: Document, storage: Storage, client_id: int) -> IvrError | None:
    """The first Play whose file (a fixed path, no template) is missing: worth knowing before
    dialling anyone."""
    for node in document.root.walk():
        if node.tag == "Play" and node.text and "{{" not in node.text and "://" not in node.text:
            try:
                path = storage.resolve(client_id, node.text)
            except StorageError as exc:
                return IvrError(f"Cannot execute Play. {exc}", node.line)
            if not path.is_file():
                return IvrError(f"Cannot execute Play. File {node.text} doesn't exist", node.line)
    return None
