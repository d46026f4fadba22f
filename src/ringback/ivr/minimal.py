"""A stopgap IVR runner: a small, safe subset of the Basix XML dialect, until the IVR engine exists.

Supported, as children of the root ``<IVR>`` or ``<Response>``:

* ``<Play loop="1..5">path/in/client/storage.wav</Play>``
* ``<Speak language=".." voice=".." loop="1..5">text</Speak>``
* ``<Wait length="seconds"/>`` (default 1 second, at most 3600)
* ``<Hangup reason="rejected|busy"/>`` (ends the call; later elements are not run)

Other elements of the dialect raise :class:`IvrNotSupported`; anything else is an
:class:`IvrError` worded like the dialect's own errors. The parser never loads a DTD, never
resolves entities, never touches the network, and refuses any DOCTYPE.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from ringback.storage import Storage, StorageError
from ringback.telephony.base import Call

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_LOOP = 5
DEFAULT_WAIT_SECONDS = 1.0
MAX_WAIT_SECONDS = 3600.0
ROOT_TAGS = frozenset({"IVR", "Response"})

#: elements of the Basix dialect this runner does not run yet
NOT_SUPPORTED_YET = frozenset({
    "AddJob", "Answer", "Cond", "GetDigits", "GetInput", "GetJSON", "GoTo", "If", "Park",
    "ReceiveFax", "Redirect", "Section", "SendFax", "SendSMS", "Set", "SetErrorHandler",
    "Switch", "Transfer",
})  # fmt: skip

_ATTRIBUTES: dict[str, frozenset[str]] = {
    "Play": frozenset({"loop"}),
    "Speak": frozenset({"language", "voice", "loop"}),
    "Wait": frozenset({"length"}),
    "Hangup": frozenset({"reason"}),
}
#: attributes of the dialect that only matter with features not supported yet
_ATTRIBUTES_NOT_SUPPORTED_YET: dict[str, frozenset[str]] = {
    "Play": frozenset({"terminators", "purpose"}),
    "Speak": frozenset({"purpose"}),
    "Wait": frozenset({"purpose"}),
}
_HANGUP_CAUSES: dict[str | None, str] = {
    None: "NORMAL_CLEARING",
    "rejected": "CALL_REJECTED",
    "busy": "USER_BUSY",
}
_XML_DECLARATION = re.compile(r"\A\ufeff?\s*<\?xml\b[^>]*\?>")
_DOCTYPE = re.compile(r"<!(DOCTYPE|ENTITY)\b", re.IGNORECASE)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class IvrError(Exception):
    """The IVR document is wrong, or one of its elements cannot be executed."""


class IvrNotSupported(IvrError):
    """An element or attribute of the dialect that this runner does not support yet."""


@dataclass(frozen=True, slots=True)
class PlayStep:
    path: str  # relative to the client's storage folder
    loop: int = 1
    line: int = 0


@dataclass(frozen=True, slots=True)
class SpeakStep:
    text: str
    language: str | None = None
    voice: str | None = None
    loop: int = 1
    line: int = 0


@dataclass(frozen=True, slots=True)
class WaitStep:
    seconds: float = DEFAULT_WAIT_SECONDS
    line: int = 0


@dataclass(frozen=True, slots=True)
class HangupStep:
    reason: str | None = None  # rejected | busy
    line: int = 0


Step = PlayStep | SpeakStep | WaitStep | HangupStep


# --- parsing ------------------------------------------------------------------------------


def parse_minimal(xml: str) -> list[Step]:
    """The steps of an IVR document, or IvrError / IvrNotSupported saying what is wrong."""
    root = _parse_document(xml)
    if _tag(root) not in ROOT_TAGS:
        raise IvrError(
            f"The root element must be IVR or Response, not {_tag(root)} (line {_line(root)})"
        )
    _check_attributes(root, frozenset(), frozenset())
    return [_parse_step(child) for child in root.iterchildren(tag=etree.Element)]


def _parse_document(xml: str) -> etree._Element:
    if len(xml.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise IvrError(f"The IVR document is larger than {MAX_DOCUMENT_BYTES} bytes")
    found = _DOCTYPE.search(xml)
    if found:
        line = xml.count("\n", 0, found.start()) + 1
        raise IvrError(f"DOCTYPE and ENTITY declarations are not allowed (line {line})")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    # a str cannot carry an encoding declaration for lxml; the text is decoded already
    text = _XML_DECLARATION.sub("", xml, count=1)
    try:
        root = etree.fromstring(text, parser)
    except etree.XMLSyntaxError as exc:
        raise IvrError(f"The IVR document is not well-formed XML: {exc.msg}") from exc
    if root is None:
        raise IvrError("The IVR document is empty")
    doctype: str = getattr(root.getroottree().docinfo, "doctype", "")
    if doctype:
        raise IvrError("DOCTYPE and ENTITY declarations are not allowed (line 1)")
    _check_depth(root)
    return root


def _check_depth(root: etree._Element) -> None:
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if isinstance(element, etree._Entity):
            raise IvrError(f"Entity references are not allowed (line {_line(element)})")
        if depth > MAX_DEPTH:
            raise IvrError(
                f"The IVR document is nested deeper than {MAX_DEPTH} levels (line {_line(element)})"
            )
        stack.extend((child, depth + 1) for child in element)


def _parse_step(element: etree._Element) -> Step:
    tag = _tag(element)
    line = _line(element)
    if tag in NOT_SUPPORTED_YET:
        raise IvrNotSupported(f"Element {tag} is not supported yet (line {line})")
    allowed = _ATTRIBUTES.get(tag)
    if allowed is None:
        raise IvrError(f"Unknown element {tag} (line {line})")
    _check_attributes(element, allowed, _ATTRIBUTES_NOT_SUPPORTED_YET.get(tag, frozenset()))
    for child in element.iterchildren(tag=etree.Element):
        raise IvrError(f"Element {tag} cannot contain element {_tag(child)} (line {_line(child)})")
    text = (element.text or "").strip()
    if tag == "Play":
        return _parse_play(element, text, line)
    if tag == "Speak":
        return _parse_speak(element, text, line)
    if tag == "Wait":
        return WaitStep(seconds=_wait_length(element.get("length"), line), line=line)
    reason = element.get("reason")
    if reason is not None and reason not in _HANGUP_CAUSES:
        raise IvrError(
            f"Attribute reason of element Hangup must be rejected or busy, not {reason!r} "
            f"(line {line})"
        )
    return HangupStep(reason=reason, line=line)


def _tag(element: etree._Element) -> str:
    tag = element.tag
    return tag.decode() if isinstance(tag, bytes) else str(tag)


def _line(element: etree._Element) -> int:
    line = getattr(element, "sourceline", None)
    return line if isinstance(line, int) else 0


def _parse_play(element: etree._Element, text: str, line: int) -> PlayStep:
    if not text:
        raise IvrError(f"Element Play needs the path of a file to play (line {line})")
    _refuse_variables("Play", text, line)
    if _URL.match(text):
        raise IvrNotSupported(f"Playing a URL is not supported yet (line {line})")
    return PlayStep(path=text, loop=_loop("Play", element.get("loop"), line), line=line)


def _parse_speak(element: etree._Element, text: str, line: int) -> SpeakStep:
    if not text:
        raise IvrError(f"Element Speak needs a text to say (line {line})")
    _refuse_variables("Speak", text, line)
    return SpeakStep(
        text=text,
        language=element.get("language"),
        voice=element.get("voice"),
        loop=_loop("Speak", element.get("loop"), line),
        line=line,
    )


def _check_attributes(
    element: etree._Element, allowed: frozenset[str], not_yet: frozenset[str]
) -> None:
    for name in element.attrib:
        if name in not_yet:
            raise IvrNotSupported(
                f"Attribute {name!s} of element {_tag(element)} is not supported yet "
                f"(line {_line(element)})"
            )
        if name not in allowed:
            raise IvrError(
                f"Element {_tag(element)} does not support attribute {name!s} "
                f"(line {_line(element)})"
            )


def _refuse_variables(tag: str, text: str, line: int) -> None:
    if "{{" in text:
        raise IvrNotSupported(
            f"Variables ({{{{...}}}}) in {tag} are not supported yet (line {line})"
        )


def _loop(tag: str, value: str | None, line: int) -> int:
    if value is None:
        return 1
    text = value.strip()
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LOOP):
        raise IvrError(
            f"Attribute loop of element {tag} must be an integer from 1 to {MAX_LOOP}, "
            f"not {value!r} (line {line})"
        )
    return int(text)


def _wait_length(value: str | None, line: int) -> float:
    if value is None:
        return DEFAULT_WAIT_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_WAIT_SECONDS):
        raise IvrError(
            f"Attribute length of element Wait must be a number of seconds above 0 and at most "
            f"{MAX_WAIT_SECONDS:g}, not {value!r} (line {line})"
        )
    return seconds


# --- running ------------------------------------------------------------------------------


def play_file(step: PlayStep, storage: Storage, client_id: int) -> Path:
    """The file a Play step plays, or IvrError in the dialect's words if it cannot be played."""
    try:
        path = storage.resolve(client_id, step.path)
    except StorageError as exc:
        raise IvrError(f"Cannot execute Play. {exc}") from exc
    if not path.is_file():
        raise IvrError(f"Cannot execute Play. File {step.path} doesn't exist")
    return path


def check_play_files(steps: Sequence[Step], storage: Storage, client_id: int) -> None:
    """IvrError for the first Play step whose file is missing: worth knowing before dialling."""
    for step in steps:
        if isinstance(step, PlayStep):
            play_file(step, storage, client_id)


async def run_minimal(steps: Sequence[Step], call: Call, storage: Storage, client_id: int) -> None:
    """Run the steps on an answered call, in order; stops after a Hangup.

    Raises IvrError when a step cannot be executed and lets CallError through (e.g. the far
    end hung up). It does not hang up at the end: the caller does.
    """
    for step in steps:
        if isinstance(step, PlayStep):
            await call.play(play_file(step, storage, client_id), loop=step.loop)
        elif isinstance(step, SpeakStep):
            await call.speak(step.text, language=step.language, voice=step.voice, loop=step.loop)
        elif isinstance(step, WaitStep):
            await call.wait(step.seconds)
        else:
            await call.hangup(_HANGUP_CAUSES[step.reason])
            return
