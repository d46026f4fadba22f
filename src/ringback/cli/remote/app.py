"""``ringback remote``: login, profiles, and the command groups over the API."""

from __future__ import annotations

from typing import Annotated

import typer

from ringback.cli.remote.campaign import callerid_app, caps_app
from ringback.cli.remote.exports import audit_app, calls_app, export_calls
from ringback.cli.remote.hooks import delivery_app, webhook_app
from ringback.cli.remote.http import RemoteClient, RemoteError
from ringback.cli.remote.profiles import (
    DEFAULT_PROFILE,
    Profile,
    ProfileError,
    load_all,
    profiles_path,
    save,
)
from ringback.cli.remote.queues import queue_app
from ringback.cli.remote.resources import history_app, job_app, number_app, storage_app
from ringback.cli.remote.shell import JsonOpt, chosen, reporting, show, table
from ringback.cli.remote.tasks import task_app

remote_app = typer.Typer(
    help="Drive a running ringback over its HTTP API (log in once per server: profiles).",
    no_args_is_help=True,
)


@remote_app.callback()
def _remote(
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            envvar="RINGBACK_PROFILE",
            help=f"Profile to use (default: {DEFAULT_PROFILE!r}); see 'ringback remote profiles'.",
        ),
    ] = None,
) -> None:
    """Drive a running ringback over its HTTP API (log in once per server: profiles)."""
    chosen.profile = profile
    chosen.client = None


@remote_app.command()
def login(
    url: Annotated[str, typer.Option("--url", help="The server, e.g. http://127.0.0.1:8080.")],
    client_id: Annotated[str, typer.Option("--client-id", help="API client_id (the key).")],
    client_secret: Annotated[
        str,
        typer.Option(
            "--client-secret",
            envvar="RINGBACK_CLIENT_SECRET",
            prompt=True,
            hide_input=True,
            help="API client_secret (asked for when not given; or RINGBACK_CLIENT_SECRET).",
        ),
    ],
    client: Annotated[
        int | None,
        typer.Option(
            "--client", min=1, help="The client's number, for a server that does not say."
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="Save as this profile (default: 'default').")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the credentials (get a token) and save them as a profile (file mode 0600)."""
    name = profile or chosen.profile or DEFAULT_PROFILE
    with reporting(as_json):
        if not url.startswith(("http://", "https://")):
            raise RemoteError(f"--url {url!r}: give http://HOST:PORT or https://HOST")
        candidate = Profile(name, url.rstrip("/"), client_id, client_secret, client or 0)
        with RemoteClient(candidate) as api:
            try:
                api.fetch_token()
            except RemoteError as exc:
                if exc.status == 401:  # the credentials given are refused: input, exit 1
                    raise RemoteError(
                        f"{url} refused these credentials ({exc.error}): check --client-id "
                        "and --client-secret",
                        error=exc.error,
                        status=401,
                    ) from None
                raise
            number = client or api.whoami()
        saved = Profile(name, candidate.url, client_id, client_secret, number)
        try:
            path = save(saved)
        except (OSError, ProfileError) as exc:
            raise RemoteError(f"cannot save the profile: {exc}", exit_code=2) from None
        shown = {**saved.shown(), "file": str(path)}
        show(
            shown,
            as_json,
            lambda: print(
                f"logged in to {saved.url} as client {number}; saved profile {name!r} in {path}"
            ),
        )


@remote_app.command("profiles")
def list_profiles(as_json: JsonOpt = False) -> None:
    """List the saved profiles (never their secrets)."""
    with reporting(as_json):
        try:
            profiles = load_all()
        except ProfileError as exc:
            raise RemoteError(str(exc), exit_code=2) from None
        current = chosen.profile or DEFAULT_PROFILE
        rows = [{**p.shown(), "current": p.name == current} for p in profiles.values()]
        if not rows and not as_json:
            print(f"no profiles yet in {profiles_path()}: run 'ringback remote login'")
            return
        columns = [
            ("name", "name"),
            ("url", "url"),
            ("client_id", "client_id"),
            ("client", "client"),
            ("current", "current"),
        ]
        show(rows, as_json, lambda: table(rows, columns))


remote_app.add_typer(queue_app, name="queue")
remote_app.add_typer(task_app, name="task")
remote_app.add_typer(job_app, name="job")
remote_app.add_typer(history_app, name="history")
remote_app.add_typer(number_app, name="number")
remote_app.add_typer(webhook_app, name="webhook")
remote_app.add_typer(delivery_app, name="delivery")
remote_app.add_typer(storage_app, name="storage")
remote_app.add_typer(caps_app, name="caps")
remote_app.add_typer(callerid_app, name="callerid")
remote_app.add_typer(calls_app, name="calls")
remote_app.add_typer(audit_app, name="audit")
history_app.command("export")(export_calls)
