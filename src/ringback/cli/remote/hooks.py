"""``ringback remote webhook …`` and ``ringback remote delivery …``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ringback.cli.remote.shell import JsonOpt, record, remote, reporting, show, table

webhook_app = typer.Typer(
    help="Webhook subscriptions: list, add, disable, enable, rotate, delete.", no_args_is_help=True
)
delivery_app = typer.Typer(
    help="Webhook deliveries: list, dead, show, redeliver.", no_args_is_help=True
)

IdArg = Annotated[int, typer.Argument(help="Webhook id.")]
WEBHOOK_COLUMNS = [
    ("id", "id"),
    ("url", "url"),
    ("events", "events"),
    ("active", "active"),
    ("disabled because", "disabled_reason"),
    ("description", "description"),
]
DELIVERY_COLUMNS = [
    ("id", "id"),
    ("event", "event_type"),
    ("task", "task_id"),
    ("webhook", "webhook_id"),
    ("status", "status"),
    ("attempts", "attempts"),
    ("last code", "last_status_code"),
    ("last error", "last_error"),
    ("next try (UTC)", "next_attempt_at"),
]


def _hidden(hook: dict[str, Any]) -> dict[str, Any]:
    """A subscription as shown in a table or record: its secret only under --json."""
    return {k: v for k, v in hook.items() if k != "secret"}


@webhook_app.command("list")
def list_webhooks(as_json: JsonOpt = False) -> None:
    """The client's webhook subscriptions."""
    with reporting(as_json):
        hooks = remote().call("GET", "/webhooks/")["webhooks"]
        show(hooks, as_json, lambda: table(hooks, WEBHOOK_COLUMNS, wrap=("url", "description")))


@webhook_app.command("add")
def add_webhook(
    url: Annotated[str, typer.Argument(help="Where the events are POSTed.")],
    events: Annotated[
        list[str] | None, typer.Option("--event", help="Event type (repeat); default: all.")
    ] = None,
    description: Annotated[str, typer.Option("--description")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Subscribe a URL to events (its signing secret is printed once, here)."""
    body: dict[str, Any] = {"url": url, "description": description}
    if events:
        body["events"] = events
    with reporting(as_json):
        hook = remote().call("POST", "/webhooks/", json=body)
        show(
            hook,
            as_json,
            lambda: print(f"added webhook {hook['id']}; its signing secret: {hook['secret']}"),
        )


def _put(hook_id: int, body: dict[str, Any], as_json: bool, said: str) -> None:
    with reporting(as_json):
        hook = remote().call("PUT", f"/webhooks/{hook_id}", json=body)
        show(hook, as_json, lambda: print(said.format(**hook)))


@webhook_app.command("disable")
def disable_webhook(hook_id: IdArg, as_json: JsonOpt = False) -> None:
    """Stop sending to a webhook (its deliveries wait)."""
    _put(hook_id, {"active": False}, as_json, "webhook {id} disabled")


@webhook_app.command("enable")
def enable_webhook(hook_id: IdArg, as_json: JsonOpt = False) -> None:
    """Send to a webhook again."""
    _put(hook_id, {"active": True}, as_json, "webhook {id} enabled")


@webhook_app.command("rotate")
def rotate_webhook(hook_id: IdArg, as_json: JsonOpt = False) -> None:
    """A new signing secret (the previous one still signs for a while)."""
    _put(
        hook_id,
        {"rotate_secret": True},
        as_json,
        "webhook {id}: new signing secret {secret} (the previous one is valid until "
        "{previous_secret_valid_until})",
    )


@webhook_app.command("delete")
def delete_webhook(hook_id: IdArg, as_json: JsonOpt = False) -> None:
    """Remove a webhook subscription."""
    with reporting(as_json):
        remote().call("DELETE", f"/webhooks/{hook_id}")
        show({"deleted": hook_id}, as_json, lambda: print(f"webhook {hook_id} deleted"))


def _deliveries(
    status: str | None,
    webhook: int | None,
    task: int | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    params = {
        "status": status,
        "webhook_id": webhook,
        "task_id": task,
        "limit": limit,
        "offset": offset,
    }
    with reporting(as_json):
        page = remote().call("GET", "/webhook_deliveries/", params=params)
        show(
            page, as_json, lambda: table(page["deliveries"], DELIVERY_COLUMNS, wrap=("last error",))
        )


WebhookOpt = Annotated[int | None, typer.Option("--webhook", help="Of this webhook id.")]
TaskOpt = Annotated[int | None, typer.Option("--task", help="Of this task id.")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=1000)]
OffsetOpt = Annotated[int, typer.Option("--offset", min=0)]


@delivery_app.command("list")
def list_deliveries(
    status: Annotated[
        str | None, typer.Option("--status", help="pending, delivered or dead.")
    ] = None,
    webhook: WebhookOpt = None,
    task: TaskOpt = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Webhook deliveries, newest first."""
    _deliveries(status, webhook, task, limit, offset, as_json)


@delivery_app.command("dead")
def dead_deliveries(
    webhook: WebhookOpt = None,
    task: TaskOpt = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Deliveries that gave up (redeliver them with 'delivery redeliver ID')."""
    _deliveries("dead", webhook, task, limit, offset, as_json)


@delivery_app.command("show")
def show_delivery(delivery_id: Annotated[int, typer.Argument()], as_json: JsonOpt = False) -> None:
    """One delivery, with its body."""
    with reporting(as_json):
        found = remote().call("GET", f"/webhook_deliveries/{delivery_id}")
        show(found, as_json, lambda: record(_hidden(found)))


@delivery_app.command("redeliver")
def redeliver(delivery_id: Annotated[int, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Send a delivery again (a dead one comes back to pending)."""
    with reporting(as_json):
        again = remote().call("POST", f"/webhook_deliveries/{delivery_id}/redeliver")
        show(again, as_json, lambda: print(f"delivery {delivery_id}: {again['status']}"))
