"""The do-not-call page: the client's suppression entries (numbers and prefixes on named lists,
with a source and an optional expiry), filtered by list or by the start of a number and paged;
add one entry, import a CSV file (checked whole first: a bad line adds nothing and is named),
remove an entry or a whole list, and check whether a number would be dialled now. The engine
checks every call leg against these lists right before it dials (docs/campaigns.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from ringback.console.render import Acting, Console, ConsoleRoute, page
from ringback.console.session import Session
from ringback.domain.rows import InvalidInput
from ringback.domain.suppression import DEFAULT_LIST, LIST_NAME_RE
from ringback.service.suppressions import NewEntry

router = APIRouter(prefix="/ui/dnc", route_class=ConsoleRoute, include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
PAGE_SIZE = 50
#: the largest CSV file the page takes (1,000,000 numbers of 16 characters fit)
MAX_IMPORT_BYTES = 32 * 1024 * 1024
_LIST = "^(|" + LIST_NAME_RE.pattern + ")$"
#: a datetime-local input's value (UTC), minutes or seconds
_MOMENT = r"^(|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?)$"


class DncQuery(BaseModel):
    """The page's filters and the number to check, from the query string."""

    list: str = Field(default="", max_length=64, pattern=_LIST)
    number: str = Field(default="", max_length=40, pattern=r"^\+?[0-9]*$")
    check: str = Field(default="", max_length=64, pattern=r"^[^\x00]*$")
    offset: int = Field(default=0, ge=0, le=10**9)


def _expiry(value: str) -> datetime | None:
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None


async def _context(console: Console, client_id: int, query: DncQuery) -> dict[str, Any]:
    lists = console.services.suppressions
    rows, total = await lists.list(
        client_id, list_name=query.list or None, number=query.number or None,
        limit=PAGE_SIZE, offset=query.offset,
    )  # fmt: skip
    checked = None
    if query.check.strip():
        found = await lists.check(client_id, query.check.strip())
        checked = {"number": query.check.strip(), "found": found}
    return {
        "entries": rows, "total": total, "query": query, "page_size": PAGE_SIZE,
        "checked": checked, "default_list": DEFAULT_LIST, "added": None,
    }  # fmt: skip


@router.get("", response_class=HTMLResponse)
async def dnc_page(request: Request, query: Annotated[DncQuery, Query()]) -> Response:
    console = Console.of(request)
    session = await console.session(request)
    context = await _context(console, session.client_id, query)
    return page(request, "dnc.html", context, session=session)


async def _added(request: Request, console: Console, session: Session, added: int) -> Response:
    context = await _context(console, session.client_id, DncQuery())
    context["added"] = added
    return page(request, "dnc.html", context, session=session, status_code=201)


@router.post("", response_class=HTMLResponse)
async def add(
    request: Request,
    acting: Acting,
    number: Annotated[str, Form(max_length=64)],
    list_name: Annotated[str, Form(alias="list", max_length=64, pattern=_LIST)] = "",
    source: Annotated[str, Form(max_length=200, pattern=r"^[^\x00]*$")] = "",
    expires_at: Annotated[str, Form(pattern=_MOMENT)] = "",
) -> Response:
    """Add one number, or a prefix ending in ``*``."""
    console, session = acting
    item = NewEntry(number, list_name or DEFAULT_LIST, source.strip(), _expiry(expires_at))
    added = await console.services.suppressions.add(session.client_id, [item])
    return await _added(request, console, session, added)


@router.post("/import", response_class=HTMLResponse)
async def import_file(
    request: Request,
    acting: Acting,
    file: Annotated[UploadFile, File()],
    list_name: Annotated[str, Form(alias="list", max_length=64, pattern=_LIST)] = "",
    source: Annotated[str, Form(max_length=200, pattern=r"^[^\x00]*$")] = "",
    expires_at: Annotated[str, Form(pattern=_MOMENT)] = "",
) -> Response:
    """Add every entry of a CSV file: ``number[,list[,source[,expires_at]]]`` per line, or the
    columns its header names; all or nothing."""
    console, session = acting
    content = await file.read(MAX_IMPORT_BYTES + 1)
    if len(content) > MAX_IMPORT_BYTES:
        raise InvalidInput(
            f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB: split it, or "
            "send it to the API (POST /client/{id}/suppressions/import)",
            [{"loc": ["file"], "msg": "too large"}],
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        problem = [{"loc": ["file"], "msg": "not UTF-8"}]
        raise InvalidInput("the file is not UTF-8 text", problem) from None
    if "\x00" in text:
        raise InvalidInput("NUL in the file", [{"loc": ["file"], "msg": "NUL"}])
    added = await console.services.suppressions.import_csv(
        session.client_id, text.splitlines(), list_name=list_name or DEFAULT_LIST,
        source=source.strip(), expires_at=_expiry(expires_at),
    )  # fmt: skip
    return await _added(request, console, session, added)


@router.post("/{entry_id}/remove")
async def remove(entry_id: Id, acting: Acting) -> Response:
    console, session = acting
    await console.services.suppressions.remove(session.client_id, entry_id)
    return RedirectResponse("/ui/dnc", status_code=303)


@router.post("/remove-list", response_class=HTMLResponse)
async def remove_list(
    request: Request,
    acting: Acting,
    list_name: Annotated[str, Form(alias="list", min_length=1, max_length=64, pattern=_LIST)],
) -> Response:
    """Delete every entry of one list."""
    console, session = acting
    removed = await console.services.suppressions.remove_matching(
        session.client_id, list_name=list_name
    )
    context = await _context(console, session.client_id, DncQuery())
    context["removed"] = {"list": list_name, "count": removed}
    return page(request, "dnc.html", context, session=session)
