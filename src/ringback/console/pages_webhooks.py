"""The webhooks page: the client's subscriptions (add with a URL and event patterns, change
the URL, events and description, set a secret typed by the operator (never shown back, only
its first 4 characters), switch off and on, rotate the secret: the new one is shown once, delete),
its recent deliveries with their status and last response, and the dead ones with a Redeliver
button; a delivery's page shows the body it sends. The address guard refuses what the API
refuses (private addresses unless the server allows them)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from ringback.console.render import Acting, Console, ConsoleRoute, page
from ringback.domain.rows import InvalidInput, SubscriptionRow
from ringback.domain.task_rules import check_event_pattern
from ringback.domain.urlguard import BlockedAddress, check_literal
from ringback.domain.webhook_fields import check_description, check_secret

router = APIRouter(prefix="/ui/webhooks", route_class=ConsoleRoute, include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
RECENT = 20
DEAD = 50
MAX_PATTERNS = 20


def _refused(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"invalid input: {field}", [{"loc": [field], "msg": message}])


def check_subscription(url: str, events: str, *, allow_private: bool) -> tuple[str, list[str]]:
    """The URL (as the API checks it) and the event patterns (separated by commas or spaces)."""
    url = url.strip()
    if not re.match(r"^https?://", url) or len(url) > 2048:
        raise _refused("url", "an http(s) URL of at most 2048 characters")
    try:
        check_literal(url, allow_private=allow_private)
    except BlockedAddress as exc:
        raise _refused("url", str(exc)) from None
    patterns = [p for p in re.split(r"[\s,]+", events) if p]
    if not patterns:
        raise _refused("events", "choose at least one event type or pattern (* is every event)")
    if len(patterns) > MAX_PATTERNS:
        raise _refused("events", f"at most {MAX_PATTERNS} patterns")
    for pattern in patterns:
        try:
            check_event_pattern(pattern)
        except ValueError as exc:
            raise _refused("events", str(exc)) from None
    return url, list(dict.fromkeys(patterns))


def check_edit(description: str | None, secret: str) -> dict[str, Any]:
    """The description and the secret of an edit as changes, checked as the API checks them
    (``domain/webhook_fields``): no description field changes nothing, an empty secret field
    keeps the secret."""
    changes: dict[str, Any] = {}
    if description is not None:
        try:
            changes["description"] = check_description(description)
        except ValueError as exc:
            raise _refused("description", str(exc)) from None
    if secret.strip():
        try:
            changes["secret"] = check_secret(secret)
        except ValueError as exc:
            raise _refused("secret", str(exc)) from None
    return changes


async def _context(console: Console, client_id: int) -> dict[str, Any]:
    hooks = console.services.webhooks
    subscriptions = await hooks.subscriptions(client_id)
    recent, total = await hooks.deliveries(client_id, limit=RECENT, newest_first=True)
    dead, dead_total = await hooks.deliveries(
        client_id, status="dead", limit=DEAD, newest_first=True
    )
    return {
        "subscriptions": subscriptions, "recent": recent, "total": total, "dead": dead,
        "dead_total": dead_total, "revealed": None, "form": {"url": "", "events": "*"},
        "editing": None, "deleted": None,
    }  # fmt: skip


@router.get("", response_class=HTMLResponse)
async def webhooks_page(request: Request) -> Response:
    console = Console.of(request)
    session = await console.session(request)
    context = await _context(console, session.client_id)
    return page(request, "webhooks.html", context, session=session)


def _revealed(row: SubscriptionRow, what: str) -> dict[str, Any]:
    return {"id": row.id, "url": row.url, "secret": row.secret, "what": what}


@router.post("", response_class=HTMLResponse)
async def add(
    request: Request,
    acting: Acting,
    url: Annotated[str, Form(max_length=4096)],
    events: Annotated[str, Form(max_length=2000)] = "",
    description: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Subscribe ``url``; the page shows the new secret once."""
    console, session = acting
    allow = console.services.settings.webhook_allow_private
    try:
        checked, patterns = check_subscription(url, events, allow_private=allow)
    except InvalidInput as exc:
        context = await _context(console, session.client_id)
        context["form"] = {"url": url, "events": events}
        context["problem"] = exc
        return page(request, "webhooks.html", context, session=session, status_code=422)
    row = await console.services.webhooks.subscribe(
        session.client_id, url=checked, events=patterns, secret=None, active=True,
        description=description.strip().replace("\x00", ""),
    )  # fmt: skip
    context = await _context(console, session.client_id)
    context["revealed"] = _revealed(row, "added")
    return page(request, "webhooks.html", context, session=session, status_code=201)


@router.post("/{sub_id}/active")
async def switch(sub_id: Id, acting: Acting, on: Annotated[bool, Form()]) -> Response:
    console, session = acting
    await console.services.webhooks.change(session.client_id, sub_id, {"active": on})
    return RedirectResponse("/ui/webhooks", status_code=303)


@router.post("/{sub_id}/rotate", response_class=HTMLResponse)
async def rotate(request: Request, sub_id: Id, acting: Acting) -> Response:
    """A new secret, shown once (the old one still signs for a day)."""
    console, session = acting
    row = await console.services.webhooks.change(session.client_id, sub_id, {}, rotate_secret=True)
    context = await _context(console, session.client_id)
    context["revealed"] = _revealed(row, "rotated")
    return page(request, "webhooks.html", context, session=session)


@router.post("/{sub_id}/edit", response_class=HTMLResponse)
async def edit(
    request: Request,
    sub_id: Id,
    acting: Acting,
    url: Annotated[str, Form(max_length=4096)],
    events: Annotated[str, Form(max_length=2000)] = "",
    description: Annotated[str, Form(max_length=4000)] = "",
    secret: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Change the subscription's URL, event patterns (checked as when adding), description
    and, when one is typed, its secret (the old one still signs for a day, as after a
    rotation); a refused change names the field and changes nothing. The secret typed is never
    put back in the page, not even in a refused form."""
    console, session = acting
    hooks = console.services.webhooks
    await hooks.subscription(session.client_id, sub_id)  # another client's: NotFound
    allow = console.services.settings.webhook_allow_private
    # an empty description field clears the description; a form without one keeps it
    typed = description if "description" in await request.form() else None
    try:
        checked, patterns = check_subscription(url, events, allow_private=allow)
        changes = {"url": checked, "events": patterns, **check_edit(typed, secret)}
    except InvalidInput as exc:
        context = await _context(console, session.client_id)
        context["editing"] = {
            "id": sub_id, "url": url, "events": events, "description": typed,
            "secret_typed": bool(secret.strip()), "problem": exc,
        }  # fmt: skip
        return page(request, "webhooks.html", context, session=session, status_code=422)
    await hooks.change(session.client_id, sub_id, changes)
    return RedirectResponse(f"/ui/webhooks#subscription-{sub_id}", status_code=303)


@router.post("/{sub_id}/delete", response_class=HTMLResponse)
async def delete(request: Request, sub_id: Id, acting: Acting) -> Response:
    """Delete the subscription (its undelivered events are dropped)."""
    console, session = acting
    row = await console.services.webhooks.subscription(session.client_id, sub_id)
    await console.services.webhooks.unsubscribe(session.client_id, sub_id)
    context = await _context(console, session.client_id)
    context["deleted"] = {"id": row.id, "url": row.url}
    return page(request, "webhooks.html", context, session=session)


@router.get("/deliveries/{delivery_id}", response_class=HTMLResponse)
async def delivery_page(request: Request, delivery_id: Id) -> Response:
    """A delivery: where it goes, its state and last answer, and the JSON body it sends."""
    console = Console.of(request)
    session = await console.session(request)
    row, body = await console.services.webhooks.delivery(session.client_id, delivery_id)
    try:
        shown = json.dumps(json.loads(body), indent=2, ensure_ascii=False, sort_keys=True)
    except ValueError:
        shown = body
    context = {"d": row, "body": shown}
    return page(request, "delivery.html", context, session=session)


@router.post("/deliveries/{delivery_id}/redeliver")
async def redeliver(delivery_id: Id, acting: Acting) -> Response:
    console, session = acting
    await console.services.webhooks.redeliver(session.client_id, delivery_id)
    return RedirectResponse("/ui/webhooks", status_code=303)
