"""A fax machine at the far end, in-process: what the simulator's calls fax with.

:func:`send_to_far_end` sends a fax TIFF to an in-process receiving machine and
:func:`receive_from_far_end` receives a page from an in-process sending machine (a page drawn
here naming the two stations); both run a real T.30 session through G.711
(:func:`~ringback.telephony.fax.endpoint.exchange`) with no real-time pacing, and report this
side's :class:`~ringback.telephony.fax.result.FaxResult`. They block (CPU, files): call them in
a thread from the event loop.

What the far machine does (the simulator's number rule ``fax``): ``answers`` (a modern machine:
V.17, ECM, every resolution), ``silent`` (nobody: every frame lost), ``drops`` (the line dies
10 s in), ``incompatible`` (an old G3 machine: normal resolution only, V.27ter at 4800 bit/s,
no ECM; it says so in its DIS, and a fine-resolution document, which SendFax sends by default,
fails on our side with T.30 code 11 "Far end cannot receive at the resolution of the image";
what it sends us is a normal-resolution page, received at 4800 bit/s without ECM).
"""

from __future__ import annotations

import ctypes
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ringback.telephony.fax import documents
from ringback.telephony.fax.endpoint import FaxEndpoint, exchange
from ringback.telephony.fax.g711 import Law
from ringback.telephony.fax.result import FaxResult, ReceivedFax
from ringback.telephony.fax.spandsp import ALL_MODEMS, T30_SUPPORT_V27TER

#: the frame (20 ms each) from which a far machine that "drops" stops being heard: 10 s in
DROP_AFTER_FRAMES = 500
#: spandsp 0.0.6's T30_SUPPORT_* resolutions (t30.h): 204 x 98 dpi ("normal") only
T30_SUPPORT_STANDARD_RESOLUTION = 0x01


@dataclass(frozen=True, slots=True)
class FarMachine:
    """What a far fax machine can do, as its DIS tells ours."""

    modems: int = ALL_MODEMS
    ecm: bool = True
    #: T30_SUPPORT_* resolutions; None: spandsp's default (all it knows)
    resolutions: int | None = None
    #: the resolution of the page it sends
    sends: documents.Resolution = "fine"


#: the far machines of the ``fax`` modes that have one answering
MACHINES: dict[str, FarMachine] = {
    "answers": FarMachine(),
    "silent": FarMachine(),
    "drops": FarMachine(),
    "incompatible": FarMachine(
        modems=T30_SUPPORT_V27TER, ecm=False, resolutions=T30_SUPPORT_STANDARD_RESOLUTION,
        sends="normal",
    ),
}  # fmt: skip


class _FarEndpoint(FaxEndpoint):
    """The far machine's endpoint: a :class:`FaxEndpoint` whose supported resolutions are
    narrowed (``t30_set_supported_resolutions``, declared here: only the simulator's far
    machine uses it) when its :class:`FarMachine` says so."""

    def __init__(self, machine: FarMachine, **kwargs: Any) -> None:
        self._resolutions = machine.resolutions
        super().__init__(ecm=machine.ecm, modems=machine.modems, **kwargs)

    def _configure(self, t30: int, *, ecm: bool, modems: int) -> None:
        super()._configure(t30, ecm=ecm, modems=modems)
        if self._resolutions is not None:
            set_resolutions = self._sd.lib.t30_set_supported_resolutions
            set_resolutions.restype = ctypes.c_int
            set_resolutions.argtypes = [ctypes.c_void_p, ctypes.c_int]
            set_resolutions(t30, self._resolutions)


def _machine(far_end: str) -> FarMachine:
    try:
        return MACHINES[far_end]
    except KeyError:
        raise ValueError(f"unknown far-end fax behaviour {far_end!r}") from None


def _line(far_end: str) -> Callable[[int, int], bool] | None:
    """What is lost between the two machines (see ``exchange``'s ``lose``): nothing when the far
    machine answers, everything when it is silent (no fax machine at the number), everything
    from 10 s on when the line drops."""
    if far_end in ("answers", "incompatible"):
        return None
    if far_end == "silent":
        return lambda _direction, _frame: True
    if far_end == "drops":
        return lambda _direction, frame: frame >= DROP_AFTER_FRAMES
    raise ValueError(f"unknown far-end fax behaviour {far_end!r}")


def send_to_far_end(
    document: Path,
    *,
    local_ident: str = "",
    remote_ident: str = "",
    header: str = "",
    law: Law = "ulaw",
    max_seconds: float = 600.0,
    far_end: str = "answers",
) -> FaxResult:
    """Send the fax TIFF at ``document`` to a far machine (which ``far_end``: answers, is
    silent, drops the line, or is incompatible); the sending side's result."""
    machine = _machine(far_end)
    with (
        tempfile.TemporaryDirectory(prefix="ringback-fax-") as tmp,
        FaxEndpoint(send=document, local_ident=local_ident, header=header) as sender,
        _FarEndpoint(machine, receive=Path(tmp) / "far.tif", local_ident=remote_ident) as receiver,
    ):
        sent, _ = exchange(sender, receiver, law, max_seconds, lose=_line(far_end))
    return sent


def far_end_page(
    remote_ident: str, local_ident: str, when: datetime, resolution: documents.Resolution
) -> Image.Image:
    """The page the simulated far machine sends: a frame and a few lines of text."""
    rows = documents.page_length_limit(resolution) // 3
    page = Image.new("L", (documents.FAX_WIDTH, rows), 255)
    draw = ImageDraw.Draw(page)
    draw.rectangle((20, 20, documents.FAX_WIDTH - 21, rows - 21), outline=0, width=3)
    lines = (
        "ringback simulator: a fax from the far end",
        f"from {remote_ident or 'unknown'} to {local_ident or 'unknown'}",
        when.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
    )
    for index, line in enumerate(lines):
        draw.text((80, 60 + 40 * index), line, fill=0)
    page.info["dpi"] = (documents.X_DPI, documents.Y_DPI[resolution])
    return page


def receive_from_far_end(
    *,
    local_ident: str = "",
    remote_ident: str = "",
    when: datetime,
    resolution: documents.Resolution = "fine",
    law: Law = "ulaw",
    max_seconds: float = 600.0,
    far_end: str = "answers",
) -> ReceivedFax:
    """Receive one page from a far machine; the receiving side's result and the TIFF (empty
    bytes when nothing was received). An incompatible (old) machine sends its page at normal
    resolution whatever ``resolution`` asks."""
    machine = _machine(far_end)
    if machine.sends == "normal":
        resolution = "normal"
    with tempfile.TemporaryDirectory(prefix="ringback-fax-") as tmp:
        outgoing, incoming = Path(tmp) / "far.tif", Path(tmp) / "in.tif"
        page = documents.fax_page(
            far_end_page(remote_ident, local_ident, when, resolution), resolution
        )
        documents.write_fax_tiff([page], outgoing)
        with (
            _FarEndpoint(machine, send=outgoing, local_ident=remote_ident) as sender,
            FaxEndpoint(receive=incoming, local_ident=local_ident) as receiver,
        ):
            _, got = exchange(sender, receiver, law, max_seconds, lose=_line(far_end))
        tiff = incoming.read_bytes() if got.ok and incoming.is_file() else b""
    return ReceivedFax(got, tiff)
