"""The numbers page: the client's inbound routes (a called number to an IVR file in its storage
or to an answer URL, which may be told when the call ends; add or replace, delete) and the "try
this number" panel, which runs an inbound call on the simulator with the digits and call
variables given and shows its transcript."""

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
#: the API's limit of call variables in a simulated call (``SimulateIn.variables``)
MAX_VARIABLES = 50
MAX_VALUE = 1000
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _refused(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"invalid input: {field}", [{"loc": [field], "msg": message}])


def check_route(
    target: str, ivr_file: str, answer_url: str, *, allow_private: bool, notify: bool = False
) -> tuple[str | None, str | None]:
    """The route's (ivr_file, answer_url): the one ``target`` names, checked as the API does
    (``notify``, notify_completed, needs an answer URL to notify)."""
    if target == "file":
        if notify:
            raise _refused(
                "notify_completed",
                "only an answer URL is notified when the call ends: route to an answer URL, "
                "or leave it unticked",
            )
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


def read_variables(text: str) -> dict[str, str]:
    """Call variables for a simulated call, one ``Name=value`` a line (blank lines skipped), as
    the platform would send them (``CallerName=Ada``); a line that is not one is named."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        name = name.strip()
        if not equals or not VARIABLE_NAME.match(name):
            raise _refused(
                "variables",
                f"line {number}: {line.strip()[:60]!r} is not Name=value (a name of letters, "
                "digits and _, not starting with a digit)",
            )
        if name in found:
            raise _refused("variables", f"line {number}: {name} is given twice")
        if len(value) > MAX_VALUE or "\x00" in value:
            raise _refused("variables", f"line {number}: at most {MAX_VALUE} characters")
        found[name] = value
    if len(found) > MAX_VARIABLES:
        raise _refused("variables", f"at most {MAX_VARIABLES} variables")
    return found


async def _context(console: Console, client_id: int) -> dict[str, Any]:
    numbers = await console.services.numbers.list(client_id)
    return {
        "numbers": numbers, "result": None, "problem": None,
        "form": {"number": "", "target": "file", "ivr_file": "", "answer_url": "",
                 "notify_completed": False, "description": ""},
        "trial": {"number": numbers[0].number if numbers else "", "caller": DEFAULT_CALLER,
                  "digits": "", "variables": ""},
        "trial_problem": None,
    }  # fmt: skip


@router.get("", response_class=HTMLResponse)
async def numbers_page(request: Request, edit: str | None = None) -> Response:
    """The routes and the form; ``edit``: the form filled in with that number's route (one of
    the client's: another's, or none, leaves the form empty)."""
    console = Console.of(request)
    session = await console.session(request)
    context = await _context(console, session.client_id)
    for n in context["numbers"] if edit else ():
        if n.number == edit:
            context["form"] = {
                "number": n.number, "target": "file" if n.ivr_file else "url",
                "ivr_file": n.ivr_file or "", "answer_url": n.answer_url or "",
                "notify_completed": n.notify_completed, "description": n.description,
            }  # fmt: skip
    return page(request, "numbers.html", context, session=session)


@router.post("", response_class=HTMLResponse)
async def put(
    request: Request,
    acting: Acting,
    number: Annotated[str, Form(pattern=NUMBER)],
    target: Annotated[str, Form(pattern="^(file|url)$")] = "file",
    ivr_file: Annotated[str, Form(max_length=2000)] = "",
    answer_url: Annotated[str, Form(max_length=5000)] = "",
    description: Annotated[str, Form(max_length=500)] = "",
    notify_completed: Annotated[bool, Form()] = False,
) -> Response:
    """Route ``number`` (a new route, or one replaced); the page names what is wrong (422),
    or that another client routes the number (409)."""
    console, session = acting
    allow = console.services.settings.webhook_allow_private
    try:
        path, urls = check_route(
            target, ivr_file, answer_url, allow_private=allow, notify=notify_completed
        )
        await console.services.numbers.put(
            session.client_id, number, answer_url=urls, ivr_file=path,
            notify_completed=notify_completed,
            description=description.strip().replace("\x00", ""),
        )  # fmt: skip
    except InvalidInput as exc:
        context = await _context(console, session.client_id)
        context["form"] = {"number": number, "target": target, "ivr_file": ivr_file,
                           "answer_url": answer_url, "notify_completed": notify_completed,
                           "description": description}  # fmt: skip
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
    variables: Annotated[str, Form(max_length=60_000)] = "",
) -> Response:
    """An inbound call from ``caller`` to ``number`` on the simulator, the caller pressing
    ``digits``, with the call ``variables`` given; the transcript of what ran (the call is kept
    in the history). Variables that cannot be read are named and nothing is called (422)."""
    console, session = acting
    trial = {"number": number, "caller": caller, "digits": digits, "variables": variables}
    try:
        given = read_variables(variables)
    except InvalidInput as exc:
        if request.headers.get("HX-Request"):
            values = {"result": None, "trial_problem": exc}
            return page(request, "_simulated.html", values, session=session, status_code=422)
        context = await _context(console, session.client_id)
        context["trial"], context["trial_problem"] = trial, exc
        return page(request, "numbers.html", context, session=session, status_code=422)
    run, record = await console.services.numbers.simulate(
        session.client_id, number, caller=caller, digits=digits, variables=given
    )
    error = run.error.message if run.error is not None else run.call_error
    result = {
        "call_uuid": record.call_uuid, "error": error, "hung_up_by": run.hung_up_by,
        "steps": [step(str(entry)) for entry in run.trace], "jobs_added": run.jobs_added,
        "dtmf": record.dtmf_received, "fax": record.fax, "number": number, "digits": digits,
        "given": given, "set": {name[4:]: value for name, value in run.var_parameters().items()},
    }  # fmt: skip
    if request.headers.get("HX-Request"):
        return page(request, "_simulated.html", {"result": result}, session=session)
    context = await _context(console, session.client_id)
    context["result"] = result
    context["trial"] = trial
    return page(request, "numbers.html", context, session=session)
