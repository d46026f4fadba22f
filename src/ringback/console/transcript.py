"""A call leg's IVR trace as a readable transcript: each stored line (``line N Element: detail``)
becomes who did what (said, pressed, fetched, faxed, an error, the flow)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_LINE = re.compile(r"^line (?P<line>\d+) (?P<element>[A-Za-z][\w ]*?)(?:: (?P<detail>.*))?$", re.S)

#: element -> what kind of step it is
KINDS = {
    "Play": "said", "Speak": "said", "Wait": "said",
    "GetDigits": "pressed", "GetInput": "pressed", "GetSpeech": "pressed", "Menu": "pressed",
    "GetJSON": "fetched", "Redirect": "fetched", "AddJob": "fetched", "SendSMS": "fetched",
    "SendFax": "fax", "ReceiveFax": "fax",
    "error": "error", "error handler": "error",
    "Transfer": "call", "Answer": "call", "Hangup": "call", "Park": "call", "call ended": "call",
}  # fmt: skip
#: how each kind reads
WHO = {
    "said": "the IVR said", "pressed": "the caller pressed", "fetched": "fetched",
    "fax": "fax", "error": "error", "call": "call", "flow": "flow",
}  # fmt: skip


@dataclass(slots=True, frozen=True)
class Step:
    line: int | None
    element: str
    kind: str
    detail: str

    @property
    def who(self) -> str:
        return WHO[self.kind]


def step(text: str) -> Step:
    match = _LINE.match(text)
    if match is None:  # "… n trace entries left out", or an unknown shape
        return Step(None, "", "flow", text)
    element = match["element"]
    kind = KINDS.get(element, "flow")
    detail = match["detail"] or ""
    if "error" in element.lower() or detail.lower().startswith("error"):
        kind = "error"
    return Step(int(match["line"]), element, kind, detail)


def transcript(detail: dict[str, Any]) -> list[Step]:
    """The steps of a leg's stored ``detail["ivr_trace"]`` (none when it ran no IVR)."""
    lines = detail.get("ivr_trace") or []
    return [step(str(line)) for line in lines if isinstance(line, str | int)]
