"""IVR elements that play to the caller or listen to them: Play, Speak, Wait, GetDigits,
GetInput (its DTMF part), Park.

Each handler takes the :class:`~ringback.ivr.interpret.Interpreter` and the element's node.
:func:`play_file` plays a storage file or an http(s) URL (downloaded through the guarded
fetcher to a temporary file).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ringback.ivr.errors import IvrNotSupported
from ringback.ivr.fetch import FetchError
from ringback.ivr.parse import MAX_AUDIO_CHILDREN, Node
from ringback.ivr.run import is_url
from ringback.telephony.base import CallNotSupported, CannotPlay

if TYPE_CHECKING:
    from ringback.ivr.interpret import Interpreter

MAX_AUDIO_DOWNLOAD_BYTES = 16 * 1024 * 1024
#: legacy AI-Talk voice names and the Google voices that replace them (reference A8.18)
_FEMALE = ("nozomi", "sumire", "kaho", "maki", "nanako", "araki", "anzu")
_MALE = ("seiji", "osamu", "hiroshi", "koutaro")
LEGACY_VOICES: Mapping[str, str] = {
    **dict.fromkeys(_FEMALE, "ja-JP-Wavenet-B"),
    **dict.fromkeys(_MALE, "ja-JP-Wavenet-D"),
}


async def play_file(ivr: Interpreter, node: Node, relpath: str, loop: int = 1) -> None:
    if not is_url(relpath):
        if "://" in relpath and not relpath.startswith("file://"):
            raise ivr.fail(node, f"Only http, https and storage files can be played, not {relpath}")
        relpath = relpath.removeprefix("file://")
        try:
            await ivr.call.play(ivr.existing_file(node, relpath), loop=loop, name=relpath)
        except CannotPlay as exc:  # named by its storage name, never the server's path
            raise ivr.fail(node, f"Cannot play {relpath}: {exc.reason}") from None
        return
    if ivr.fetcher is None:
        raise ivr.fail(node, "No HTTP fetcher is available here to download a URL")
    try:
        reply = await ivr.fetcher.fetch([relpath], method="GET", max_bytes=MAX_AUDIO_DOWNLOAD_BYTES)
    except FetchError as exc:
        raise ivr.fail(node, f"Cannot download {relpath}: {exc}") from None
    suffix = PurePosixPath(urlsplit(relpath).path).suffix[:8] or ".wav"
    handle, name = tempfile.mkstemp(prefix="ringback-play-", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(reply.body)
        await ivr.call.play(Path(name), loop=loop, name=relpath)
    except CannotPlay as exc:  # named by its URL, not the temporary file
        raise ivr.fail(node, f"Cannot play {relpath}: {exc.reason}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


async def play(ivr: Interpreter, node: Node) -> None:
    relpath = ivr.render(node, node.text or "")
    loop = node.attrs["loop"]
    detail = relpath + (f" x{loop}" if loop > 1 else "")
    if "terminators" in node.attrs:
        detail += " (terminators not honoured: the call cannot interrupt playback)"
    ivr.trace(node.line, "Play", detail)
    await play_file(ivr, node, relpath, loop)


async def speak(ivr: Interpreter, node: Node) -> None:
    text = ivr.spoken_text(node, ivr.render(node, node.text or ""))
    voice = node.attrs.get("voice")
    voice = LEGACY_VOICES.get(voice, voice) if voice else None
    language = node.attrs["language"]
    loop = node.attrs["loop"]
    ivr.trace(node.line, "Speak", repr(text) + (f" x{loop}" if loop > 1 else ""))
    await ivr.call.speak(text, language=language, voice=voice, loop=loop)


async def wait(ivr: Interpreter, node: Node) -> None:
    seconds = node.attrs["length"]
    ivr.trace(node.line, "Wait", f"{seconds:g} s")
    await ivr.call.wait(seconds)


async def _audio(ivr: Interpreter, nodes: Sequence[Node]) -> None:
    for child in nodes:
        await ivr.execute(child)


async def get_digits(ivr: Interpreter, node: Node) -> None:
    await _collect(ivr, node)


async def get_input(ivr: Interpreter, node: Node) -> None:
    ivr.trace(
        node.line,
        "GetInput",
        "speech input not supported (no speech recognizer is configured): DTMF only",
    )
    await _collect(ivr, node)


async def _collect(ivr: Interpreter, node: Node) -> None:
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
        await _audio(ivr, prompt)
        if attrs["playBeep"]:
            ivr.trace(node.line, node.tag, "beep not played: the call cannot make tones")
        pressed = await ivr.call.collect_digits(
            max_digits=attrs["numDigits"],
            timeout_s=float(attrs["timeout"]),
            finish_on_key=attrs["finishOnKey"],
        )
        if pressed and all(key in valid for key in pressed):
            digits = pressed
            ivr.trace(node.line, node.tag, f"try {attempt}: {pressed!r}")
            break
        if pressed:
            ivr.trace(node.line, node.tag, f"try {attempt}: invalid {pressed!r}")
            if alert:
                await _audio(ivr, alert)
            elif "invalidDigitsSound" in attrs:
                sound = ivr.render(node, attrs["invalidDigitsSound"])
                await play_file(ivr, node, sound)
        else:
            ivr.trace(node.line, node.tag, f"try {attempt}: no input")
    ivr.result.variables["Digits"] = digits
    if digits and "action" in attrs:
        raise await ivr.follow(node, attrs["action"], "action", extra={"Digits": digits})


async def park(ivr: Interpreter, node: Node) -> None:
    seconds = node.attrs["timeout"]
    ivr.trace(node.line, "Park", f"up to {seconds} s")
    try:
        await ivr.call.park(float(seconds))
    except CallNotSupported as exc:
        raise IvrNotSupported(f"Cannot execute Park. {exc}", node.line) from None
    ivr.trace(node.line, "Park", "timed out: the call goes on")
