"""The numbers page: the client's inbound routes (a called number to an IVR file in its storage
or to an answer URL; add or replace, delete) and the "try this number" panel, which runs an
inbound call on the simulator with the digits given and shows its transcript."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from ringback.console.render import Acting, Console, ConsoleRoute, page
from ringback.console.transcript import step
from ringback.domain.rows import InvalidInput
from ringback.domain.urlguard import BlockedAddress, check_literal

router = APIRouter(prefix="/ui/numbers", route_class=ConsoleRoute, include_in_schema=False)
NUMBER = r"^\+?[0-9]{1,32}$"
Number = Annotated[str, Path(pattern=NUMBER)]
DEFAULT_CALLER = "09012341234"


def _refused(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"invalid input: {field}", [{"loc": [field], "msg": message}])


def check_route(
    target: str, ivr_file: str, answer_url: str, *, allow_private: bool
) -> tuple[str | None, str | None]:
    """The route's (ivr_file, answer_url): the one ``target`` names, checked as the API does."""
    if target == "file":
        path = ivr_file.strip()
        if not path or len(path) > 1024:
            raise _refused("ivr_file", "the path of an IVR file in your storage")
        return path, None
    urls = [url.strip() for url in answer_url.split(",") if url.strip()]
    if not urls or len(answer_url) > 4096:
        raise _refused("answer_url", "one URL, or a comma-separated fallback list")
    for url in urls:
        if not re.match(r"^https?://", url):
            raise _refused("answer_url", f"{url!r}: only http and https URLs are allowed")
        try:
            check_literal(url, allow_private=allow_private)
        except BlockedAddress as exc:
            raise _refused("answer_url", str(exc)) from None
    return None, ",".join(urls)


async def _context(console: Console, client_id: int) -> dict[str, Any]:
    numbers = await console.services.numbers.list(client_id)
    return {
        "numbers": numbers, "result": None, "problem": None,
        "form": {"number": "", "target": "file", "ivr_file": "", "answer_url": ""},
        "trial": {"number": numbers[0].number if numbers else "", "caller": DEFAULT_CALLER,
                  "digits": ""},
    }  # fmt: skip


@router.get("", response_class=HTMLResponse)
async def numbers_page(request: Request) -> Response:
    console = Console.of(request)
    session = await console.session(request)
    return page(
        request, "numbers.html", await _context(console, session.client_id), session=session
    )


@router.post("", response_class=HTMLResponse)
async def put(
    request: Request,
    acting: Acting,
    number: Annotated[str, Form(pattern=NUMBER)],
    target: Annotated[str, Form(pattern="^(file|url)$")] = "file",
    ivr_file: Annotated[str, Form(max_length=2000)] = "",
    answer_url: Annotated[str, Form(max_length=5000)] = "",
    description: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Route ``number`` (a new route, or one replaced); the page names what is wrong (422),
    or that another client routes the number (409)."""
    console, session = acting
    allow = console.services.settings.webhook_allow_private
    try:
        path, urls = check_route(target, ivr_file, answer_url, allow_private=allow)
        await console.services.numbers.put(
            session.client_id, number, answer_url=urls, ivr_file=path, notify_completed=False,
            description=description.strip().replace("\x00", ""),
        )  # fmt: skip
    except InvalidInput as exc:
        context = await _context(console, session.client_id)
        context["form"] = {"number": number, "target": target, "ivr_file": ivr_file,
                           "answer_url": answer_url}  # fmt: skip
        context["problem"] = exc
        return page(request, "numbers.html", context, session=session, status_code=422)
    return RedirectResponse("/ui/numbers", status_code=303)


@router.post("/{number}/delete")
async def delete(number: Number, acting: Acting) -> Response:
    console, session = acting
    await console.services.numbers.delete(session.client_id, number)
    return RedirectResponse("/ui/numbers", status_code=303)


@router.post("/simulate", response_class=HTMLResponse)
async def simulate(
    request: Request,
    acting: Acting,
    number: Annotated[str, Form(pattern=NUMBER)],
    caller: Annotated[str, Form(pattern=NUMBER)] = DEFAULT_CALLER,
    digits: Annotated[str, Form(max_length=200, pattern=r"^[0-9*#A-Da-d,]*$")] = "",
) -> Response:
    """An inbound call from ``caller`` to ``number`` on the simulator, the caller pressing
    ``digits``; the transcript of what ran (the call is kept in the history)."""
    console, session = acting
    run, record = await console.services.numbers.simulate(
        session.client_id, number, caller=caller, digits=digits, variables={}
    )
    error = run.error.message if run.error is not None else run.call_error
    result = {
        "call_uuid": record.call_uuid, "error": error, "hung_up_by": run.hung_up_by,
        "steps": [step(str(entry)) for entry in run.trace], "jobs_added": run.jobs_added,
        "dtmf": record.dtmf_received, "fax": record.fax, "number": number, "digits": digits,
    }  # fmt: skip
    if request.headers.get("HX-Request"):
        return page(request, "_simulated.html", {"result": result}, session=session)
    context = await _context(console, session.client_id)
    context["result"] = result
    context["trial"] = {"number": number, "caller": caller, "digits": digits}
    return page(request, "numbers.html", context, session=session)
