"""Run a validated IVR document on a call (async, against the Call / CallSession protocol).

Execution model (reference A3, DESIGN §6): the root's children run top to bottom; If, Cond and
Switch run one of their blocks in place; a Section reached in sequence runs like any block and
``GoTo`` continues at the start of the named Section (Sections sit directly under the root).
When the document ends the call is hung up. Every executed element is appended to the trace.
Loops are bounded: at most ``max_steps`` executed elements and ``max_jumps`` GoTo jumps.

Supported: Answer, Hangup, Play, Speak, Wait, Set, If/Then/Else, Cond/Clause/Else,
Switch/Case/Default (``expr`` and the legacy ``var``), Section, GoTo, GetDigits (``action``
naming a Section), AddJob. The other elements of the dialect (GetJSON, Redirect, Transfer,
Park, SendFax, ReceiveFax, SendSMS, GetInput, SetErrorHandler) are validated by the parser but
end the call here with ``Element X is not supported yet``.

An error never escapes :meth:`Interpreter.run`: it ends the call and is reported in
:attr:`IvrRun.error` (a runtime IvrError) or :attr:`IvrRun.call_error` (the call itself failed,
e.g. the far end hung up).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ringback.ivr.errors import IvrError, IvrNotSupported
from ringback.ivr.expr import Expressions, Flag, render_value
from ringback.ivr.parse import MAX_AUDIO_CHILDREN, Document, Node
from ringback.service import InvalidInput
from ringback.storage import Storage, StorageError
from ringback.telephony.base import Call, CallError

MAX_STEPS = 10_000
MAX_JUMPS = 1_000

NOT_SUPPORTED_YET = frozenset({
    "GetJSON", "Redirect", "Transfer", "Park", "SendFax", "ReceiveFax", "SendSMS", "GetInput",
    "SetErrorHandler",
})  # fmt: skip

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


class JobQueue(Protocol):
    """Where AddJob puts jobs: :class:`ringback.service.TaskService` is one."""

    async def add_jobs(self, client_id: int, items: Sequence[Any]) -> list[int]: ...


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
    hung_up_by: str | None = None  # "Hangup" or "end of document"

    @property
    def ok(self) -> bool:
        return self.error is None and self.call_error is None

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
    """The predefined call variables (reference A2/A6), all strings."""
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
    variables.update(extra or {})
    return variables


class _Jump(Exception):
    def __init__(self, section: str) -> None:
        self.section = section


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
    ) -> None:
        self.document = document
        self.call = call
        self.storage = storage
        self.client_id = client_id
        self.jobs = jobs
        self.max_steps = max_steps
        self.max_jumps = max_jumps
        self.result = IvrRun(variables=dict(variables))
        self.expressions = Expressions(self.result.variables, now=now)
        self._steps = 0
        self._jumps = 0

    async def run(self) -> IvrRun:
        """Run the document; never raises for an IVR or call error (see the module docstring)."""
        body = self.document.body
        index = 0
        try:
            while True:
                try:
                    while index < len(body):
                        await self._execute(body[index])
                        index += 1
                    break
                except _Jump as jump:
                    index = self.document.sections[jump.section]
            self._trace(0, "end of document", "hang up")
            self.result.hung_up_by = "end of document"
            await self.call.hangup()
        except _Stop:
            pass
        except IvrError as exc:
            self.result.error = exc
            self._trace(exc.line or 0, "error", exc.message)
        except CallError as exc:
            self.result.call_error = str(exc)
            self._trace(0, "call ended", str(exc))
        return self.result

    # -- helpers -------------------------------------------------------------------------------

    def _trace(self, line: int, element: str, detail: str = "") -> None:
        self.result.trace.append(TraceEntry(line, element, detail))

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

    async def _block(self, nodes: Sequence[Node]) -> None:
        for node in nodes:
            await self._execute(node)

    async def _execute(self, node: Node) -> None:
        self._steps += 1
        if self._steps > self.max_steps:
            raise IvrError(
                f"The IVR executed more than {self.max_steps} elements; stopped (endless loop?)",
                node.line,
            )
        handler = _HANDLERS.get(node.tag)
        if handler is None:
            raise IvrNotSupported(f"Element {node.tag} is not supported yet", node.line)
        await handler(self, node)

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

    def _audio_path(self, node: Node, relpath: str) -> Path:
        if "://" in relpath:
            raise IvrNotSupported(
                f"Cannot execute {node.tag}. Playing a URL is not supported yet", node.line
            )
        if self.storage is None or self.client_id is None:
            raise IvrError(f"Cannot execute {node.tag}. No client storage to play from", node.line)
        try:
            path = self.storage.resolve(self.client_id, relpath)
        except StorageError as exc:
            raise IvrError(f"Cannot execute {node.tag}. {exc}", node.line) from None
        if not path.is_file():
            raise IvrError(f"Cannot execute {node.tag}. File {relpath} doesn't exist", node.line)
        return path

    async def _play(self, node: Node) -> None:
        relpath = self._render(node, node.text or "")
        path = self._audio_path(node, relpath)
        loop = node.attrs["loop"]
        detail = relpath + (f" x{loop}" if loop > 1 else "")
        if "terminators" in node.attrs:
            detail += " (terminators not honoured: the call cannot interrupt playback)"
        self._trace(node.line, "Play", detail)
        await self.call.play(path, loop=loop)

    async def _speak(self, node: Node) -> None:
        text = self._render(node, node.text or "")
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
        self.result.variables[name] = value
        if name not in self.result.set_variables:
            self.result.set_variables.append(name)
        self._trace(node.line, "Set", f"{name} = {value!r}")

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
        self._jumps += 1
        if self._jumps > self.max_jumps:
            raise IvrError(
                f"The IVR jumped more than {self.max_jumps} times; stopped (endless loop?)",
                node.line,
            )
        self._trace(node.line, "GoTo", node.text or "")
        raise _Jump(node.text or "")

    async def _audio(self, nodes: Sequence[Node]) -> None:
        for child in nodes:
            await self._execute(child)

    async def _get_digits(self, node: Node) -> None:
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
                self._trace(node.line, "GetDigits", "beep not played: the call cannot make tones")
            pressed = await self.call.collect_digits(
                max_digits=attrs["numDigits"],
                timeout_s=float(attrs["timeout"]),
                finish_on_key=attrs["finishOnKey"],
            )
            if pressed and all(key in valid for key in pressed):
                digits = pressed
                self._trace(node.line, "GetDigits", f"try {attempt}: {pressed!r}")
                break
            if pressed:
                self._trace(node.line, "GetDigits", f"try {attempt}: invalid {pressed!r}")
                if alert:
                    await self._audio(alert)
                elif "invalidDigitsSound" in attrs:
                    sound = self._render(node, attrs["invalidDigitsSound"])
                    await self.call.play(self._audio_path(node, sound))
            else:
                self._trace(node.line, "GetDigits", f"try {attempt}: no input")
        self.result.variables["Digits"] = digits
        if digits and "action" in attrs:
            await self._action(node, attrs["action"])

    async def _action(self, node: Node, targets: Sequence[str]) -> None:
        first = targets[0]
        if first in self.document.sections:
            self._jumps += 1
            if self._jumps > self.max_jumps:
                raise IvrError(
                    f"The IVR jumped more than {self.max_jumps} times; stopped (endless loop?)",
                    node.line,
                )
            self._trace(node.line, node.tag, f"action: Section {first}")
            raise _Jump(first)
        raise IvrNotSupported(
            f"Attribute action of element {node.tag} is supported only with a Section name yet, "
            f"not {first!r}",
            node.line,
        )

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

    async def _not_supported(self, node: Node) -> None:
        raise IvrNotSupported(f"Element {node.tag} is not supported yet", node.line)


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
    "AddJob": Interpreter._add_job,
    **dict.fromkeys(NOT_SUPPORTED_YET, Interpreter._not_supported),
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
