"""The calls pages: the client's call history (filtered by time window and outcome, paged by
key, with how many calls match: ``CallHistory.count``, ``10,000+`` past its cap) and one call
(its legs, the IVR transcript, the audio it played, its fax with the documents), and the route
that streams a call's own storage files to the page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

from ringback.console.render import Console, ConsoleRoute, page
from ringback.console.transcript import transcript
from ringback.domain.model import Outcome
from ringback.domain.rows import CallRow, InvalidInput, NotFound
from ringback.service.call_files import call_files
from ringback.service.history import call_record

router = APIRouter(prefix="/ui/calls", route_class=ConsoleRoute, include_in_schema=False)
PAGE_SIZE = 50
OUTCOMES = [o.value for o in Outcome]
#: a datetime-local input's value (UTC), minutes or seconds
_MOMENT = r"^(|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?)$"
CallUuid = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
#: what a browser may show in place; anything else is downloaded
_INLINE_TYPES = re.compile(r"\.(pdf|wav|mp3|ogg|oga|opus|m4a|flac)$", re.I)


def _moment(value: str) -> datetime | None:
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None


class CallQuery(BaseModel):
    """The history's filters, from the query string (times in UTC)."""

    start: str = Field(default="", pattern=_MOMENT)
    end: str = Field(default="", pattern=_MOMENT)
    outcome: str = Field(default="", pattern="^(|" + "|".join(OUTCOMES) + ")$")
    #: the next page's key: ``<started_at ms>.<leg id>`` of the last call shown
    before: str = Field(default="", max_length=40, pattern=r"^(|\d{1,15}\.\d{1,19})$")

    @property
    def key(self) -> tuple[int, int] | None:
        at, _, leg = self.before.partition(".")
        return (int(at), int(leg)) if self.before else None

    def link(self, **changes: Any) -> str:
        values = {**self.model_dump(), **changes}
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def summary(client_id: int, legs: list[CallRow]) -> dict[str, Any]:
    """The call's record (as the API's call history has it) and its main leg's SIP code."""
    record = call_record(client_id, legs)
    primary = next((leg for leg in legs if leg.leg in ("main", "b")), legs[0])
    faxed = next((leg.fax for leg in legs if leg.fax), None)
    return {**record, "sip_code": primary.sip_code, "legs": len(legs), "fax": faxed}


@router.get("", response_class=HTMLResponse)
async def calls_page(request: Request, query: Annotated[CallQuery, Query()]) -> Response:
    console = Console.of(request)
    session = await console.session(request)
    start, end = _moment(query.start), _moment(query.end)
    if start is not None and end is not None and end <= start:
        raise InvalidInput(
            "the time window ends before it starts", [{"loc": ["end"], "msg": "before start"}]
        )
    calls, key = await console.services.history.recent(
        session.client_id, before=query.key, start=start, end=end,
        outcome=query.outcome or None, limit=PAGE_SIZE,
    )  # fmt: skip
    count = await console.services.history.count(
        session.client_id, start=start, end=end, outcome=query.outcome or None
    )
    context = {
        "calls": [summary(session.client_id, legs) for legs in calls if legs],
        "query": query, "outcomes": OUTCOMES, "count": count,
        "older": query.link(before=f"{key[0]}.{key[1]}") if key else None,
        "newest": query.link(before="") if query.before else None,
    }  # fmt: skip
    return page(request, "calls.html", context, session=session)


@router.get("/{call_uuid}", response_class=HTMLResponse)
async def call_page(request: Request, call_uuid: CallUuid) -> Response:
    console = Console.of(request)
    session = await console.session(request)
    legs = await console.services.history.legs(call_uuid=call_uuid, client_id=session.client_id)
    if not legs:
        raise NotFound(f"no call {call_uuid}")
    stored = set(call_files(legs))
    context = {
        "call": summary(session.client_id, legs), "legs": legs, "uuid": call_uuid,
        "transcripts": {leg.leg_uuid: transcript(leg.detail) for leg in legs},
        "files": stored,
        "file_url": lambda name, download=False: (
            f"/ui/calls/{quote(call_uuid)}/file?{urlencode({'name': name})}"
            + ("&download=1" if download else "")
        ),
    }  # fmt: skip
    return page(request, "call.html", context, session=session)


@router.get("/{call_uuid}/file")
async def call_file(
    request: Request,
    call_uuid: CallUuid,
    name: Annotated[str, Query(min_length=1, max_length=512)],
    download: Annotated[bool, Query()] = False,
) -> Response:
    """A file the call played or faxed, from the client's own storage (the PDF in place,
    ``download=1`` as an attachment)."""
    console = Console.of(request)
    session = await console.session(request)
    path = await console.services.call_files.path(session.client_id, call_uuid, name)
    inline = not download and _INLINE_TYPES.search(name) is not None
    response = FileResponse(
        path, filename=name.rsplit("/", 1)[-1],
        content_disposition_type="inline" if inline else "attachment",
    )  # fmt: skip
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
