"""A fax machine at the far end, in-process: what the simulator's calls fax with.

:func:`send_to_far_end` sends a fax TIFF to an in-process receiving machine and
:func:`receive_from_far_end` receives a page from an in-process sending machine (a page drawn
here naming the two stations); both run a real T.30 session through G.711
(:func:`~ringback.telephony.fax.endpoint.exchange`) with no real-time pacing, and report this
side's :class:`~ringback.telephony.fax.result.FaxResult`. They block (CPU, files): call them in
a thread from the event loop.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageDraw

from ringback.telephony.fax import documents
from ringback.telephony.fax.endpoint import FaxEndpoint, exchange
from ringback.telephony.fax.g711 import Law
from ringback.telephony.fax.result import FaxResult, ReceivedFax

#: the frame (20 ms each) from which a far machine that "drops" stops being heard: 10 s in
DROP_AFTER_FRAMES = 500


def _line(far_end: str) -> Callable[[int, int], bool] | None:
    """What is lost between the two machines (see ``exchange``'s ``lose``): nothing when the far
    machine answers, everything when it is silent (no fax machine at the number), everything
    from 10 s on when the line drops."""
    if far_end == "answers":
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
    silent, or drops the line); the sending side's result."""
    with (
        tempfile.TemporaryDirectory(prefix="ringback-fax-") as tmp,
        FaxEndpoint(send=document, local_ident=local_ident, header=header) as sender,
        FaxEndpoint(receive=Path(tmp) / "far.tif", local_ident=remote_ident) as receiver,
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
    bytes when nothing was received)."""
    with tempfile.TemporaryDirectory(prefix="ringback-fax-") as tmp:
        outgoing, incoming = Path(tmp) / "far.tif", Path(tmp) / "in.tif"
        page = documents.fax_page(far_end_page(remote_ident, local_ident, when, resolution))
        documents.write_fax_tiff([page], outgoing)
        with (
            FaxEndpoint(send=outgoing, local_ident=remote_ident) as sender,
            FaxEndpoint(receive=incoming, local_ident=local_ident) as receiver,
        ):
            _, got = exchange(sender, receiver, law, max_seconds, lose=_line(far_end))
        tiff = incoming.read_bytes() if got.ok and incoming.is_file() else b""
    return ReceivedFax(got, tiff)
