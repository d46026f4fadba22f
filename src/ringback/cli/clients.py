"""``ringback client create``: API credentials for a client."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from ringback.cli.common import JsonOpt, out, run
from ringback.config import Settings
from ringback.service import TaskService
from ringback.store.db import Store

client_app = typer.Typer(help="API clients and their credentials.", no_args_is_help=True)


@client_app.command("create")
def client_create(
    name: Annotated[str, typer.Argument(help="Client (tenant) name; made if it is new.")],
    as_json: JsonOpt = False,
) -> None:
    """Make an OAuth2 client_id and client_secret for NAME; the secret is shown only now."""
    from ringback.api.auth import create_credentials

    async def work(store: Store, _s: TaskService, _settings: Settings) -> tuple[int, str, str]:
        return await create_credentials(store, name, store.clock.now())

    client_id, key, secret = run(work)
    if as_json:
        out.print_json(data={"id": client_id, "client_id": key, "client_secret": secret})
        return
    out.print(f"client {escape(name)}: id {client_id}")
    out.print(f"client_id:     {key}")
    out.print(f"client_secret: {secret}")
    out.print("Keep the secret: it is stored hashed and cannot be shown again.")
