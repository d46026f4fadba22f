"""``ringback client create|list|disable|enable|delete|rotate-secret``.

A *client* here is an OAuth client: a ``client_id`` (key) and its secret, made for a tenant
(the client NAME); a tenant may have several.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ringback.cli.common import JsonOpt, escape, make_table, out, print_table, run, seed_time
from ringback.config import Settings
from ringback.domain.rows import Credential, CredentialRow

if TYPE_CHECKING:
    from ringback.service import NewCredentials, Services

client_app = typer.Typer(help="API clients and their credentials.", no_args_is_help=True)

KeyArg = Annotated[str, typer.Argument(help="The OAuth client_id (rb_…).", show_default=False)]


def _print_new(made: NewCredentials, as_json: bool, what: str) -> None:
    if as_json:
        out.print_json(
            data={
                "id": made.client_id, "client_id": made.key, "client_secret": made.secret,
                "secret_version": made.secret_version, "signing_secret": made.signing_secret,
            }
        )  # fmt: skip
        return
    out.print(what)
    out.print(f"client_id:      {made.key}")
    out.print(f"client_secret:  {made.secret}")
    out.print(f"signing_secret: {made.signing_secret}")
    out.print("Keep the secret: it is stored hashed and cannot be shown again.")
    out.print("The signing secret signs every request ringback sends to this client's servers.")


@client_app.command("create")
def client_create(
    name: Annotated[str, typer.Argument(help="Client (tenant) name; made if it is new.")],
    as_json: JsonOpt = False,
) -> None:
    """Make an OAuth2 client_id and client_secret for NAME; the secret is shown only now."""

    async def work(services: Services, _settings: Settings) -> NewCredentials:
        return await services.clients.create_credentials(name)

    made = run(work)
    _print_new(made, as_json, f"client {escape(name)}: id {made.client_id}")


def credential_dict(row: CredentialRow) -> dict[str, Any]:
    return {
        "id": row.client_id,
        "client": row.client_name,
        "client_id": row.key,
        "status": "disabled" if row.disabled_at else "enabled",
        "secret_version": row.secret_version,
        "created_at": seed_time(row.created_at),
        "rotated_at": seed_time(row.rotated_at) or None,
        "disabled_at": seed_time(row.disabled_at) or None,
    }


@client_app.command("list")
def client_list(
    client: Annotated[
        str | None, typer.Option("--client", help="Only the credentials of this client (tenant).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List every client_id with its client, status and secret version (never a secret)."""

    async def work(services: Services, _settings: Settings) -> list[CredentialRow]:
        return await services.clients.list_credentials(client)

    rows = run(work)
    if as_json:
        out.print_json(data=[credential_dict(row) for row in rows])
        return
    table = make_table("id", "client", "client_id", "status", "version", "created (UTC)",
                       "rotated (UTC)", "disabled (UTC)")  # fmt: skip
    for row in rows:
        table.add_row(
            str(row.client_id), escape(row.client_name), escape(row.key),
            "[yellow]disabled[/yellow]" if row.disabled_at else "[green]enabled[/green]",
            str(row.secret_version), seed_time(row.created_at), seed_time(row.rotated_at),
            seed_time(row.disabled_at),
        )  # fmt: skip
    print_table(table)


def _state(found: Credential, as_json: bool, said: str) -> None:
    if as_json:
        out.print_json(
            data={
                "id": found.client_id, "client_id": found.key,
                "status": "disabled" if found.disabled_at else "enabled",
                "secret_version": found.secret_version,
            }
        )  # fmt: skip
    else:
        out.print(said)


@client_app.command("disable")
def client_disable(key: KeyArg, as_json: JsonOpt = False) -> None:
    """Refuse KEY's secret, and every token it was given, at once (until `client enable`)."""

    async def work(services: Services, _settings: Settings) -> Credential:
        return await services.clients.disable(key)

    _state(run(work), as_json, f"{escape(key)} disabled: its secret and tokens are refused")


@client_app.command("enable")
def client_enable(key: KeyArg, as_json: JsonOpt = False) -> None:
    """Accept KEY again (tokens it was given that have not expired work again)."""

    async def work(services: Services, _settings: Settings) -> Credential:
        return await services.clients.enable(key)

    _state(run(work), as_json, f"{escape(key)} enabled")


@client_app.command("delete")
def client_delete(key: KeyArg, as_json: JsonOpt = False) -> None:
    """Delete KEY and its tokens (the tenant, its queues and tasks stay)."""

    async def work(services: Services, _settings: Settings) -> None:
        await services.clients.delete(key)

    run(work)
    if as_json:
        out.print_json(data={"client_id": key, "deleted": True})
    else:
        out.print(f"{escape(key)} deleted: its tokens stop working")


@client_app.command("rotate-secret")
def client_rotate_secret(key: KeyArg, as_json: JsonOpt = False) -> None:
    """A new secret for KEY (tokens issued before stop working) and a new signing secret for
    its client (the old one still signs for 24 hours). Both are shown only now."""

    async def work(services: Services, _settings: Settings) -> NewCredentials:
        return await services.clients.rotate_secret(key)

    made = run(work)
    _print_new(made, as_json, f"{escape(key)}: secret version {made.secret_version}")
