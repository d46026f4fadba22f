"""What a fax session reports (kept apart from the engine so that the ``Call`` protocol can
name it without loading libspandsp)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

#: spandsp's T30_ERR_CALLDROPPED and its text
CALL_DROPPED = 49
CALL_DROPPED_TEXT = "The call dropped prematurely"


@dataclass(frozen=True, slots=True)
class FaxResult:
    """How one side's T.30 session ended. ``code`` 0 is success; the codes are spandsp's
    ``T30_ERR_*`` (the ones FreeSWITCH reports, and the Basix dialect's ``FaxResultCode``),
    ``text`` is spandsp's description of the code."""

    code: int
    text: str
    sending: bool
    pages: int  # pages sent (sender) or received (receiver)
    bit_rate: int  # bit/s of the image data (14400: V.17), 0 if no page phase was reached
    ecm: bool  # error correction mode was used
    remote_ident: str  # the far end's station id (TSI/CSI)
    local_ident: str  # the station id this side sent
    header: str  # the header line printed above each sent page ("" for none, or receiving)
    audio_seconds: float  # how long the session lasted, in audio time
    #: what carried it: "g711" (T.30 over audio) or "t38" (IFP packets over UDPTL)
    transport: str = "g711"
    #: why T.38 was not used although this side asked for it (e.g. "488 Not Acceptable Here")
    fallback: str | None = None

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def operation(self) -> str:
        """The dialect's ``FaxOperation``: ``transmission`` or ``reception``."""
        return "transmission" if self.sending else "reception"

    def dropped(self, audio_seconds: float | None = None) -> FaxResult:
        """This session as ended early by the call going down (code 49, no page counted)."""
        return replace(
            self,
            code=CALL_DROPPED,
            text=CALL_DROPPED_TEXT,
            pages=0,
            audio_seconds=self.audio_seconds if audio_seconds is None else audio_seconds,
        )


@dataclass(frozen=True, slots=True)
class ReceivedFax:
    """A reception's result and the TIFF received (empty when no page came in)."""

    result: FaxResult
    tiff: bytes


class FaxDocumentError(ValueError):
    """A document cannot be turned into fax pages (or a fax TIFF cannot be read)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"cannot fax {Path(path).name}: {reason}")
        self.path = str(path)
        self.reason = reason
