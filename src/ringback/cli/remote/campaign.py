"""``ringback remote caps show|set|clear`` and ``ringback remote callerid show|set|clear``: the
client's frequency caps and allowed caller ids on the server (``/frequency_caps/``,
``/caller_ids/``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ringback.cli.remote.http import RemoteError
from ringback.cli.remote.shell import JsonOpt, remote, reporting, show
from ringback.domain.frequency_caps import parse_rule

caps_app = typer.Typer(
    help="Frequency caps: at most N calls to one number per window, across queues.",
    no_args_is_help=True,
)
callerid_app = typer.Typer(
    help="Allowed caller ids: the numbers (or prefixes) the client's calls may show.",
    no_args_is_help=True,
)


def _caps(answer: dict[str, Any], as_json: bool) -> None:
    texts = [r["text"] for r in answer["rules"]]
    show(answer, as_json, lambda: print(", ".join(texts) if texts else "no frequency cap"))


def _ids(answer: dict[str, Any], as_json: bool) -> None:
    ids = answer["caller_ids"]
    show(answer, as_json, lambda: print(" ".join(ids) if ids else "any caller id (no list)"))


@caps_app.command("show")
def caps_show(as_json: JsonOpt = False) -> None:
    """The client's caps."""
    with reporting(as_json):
        _caps(remote().call("GET", "/frequency_caps/"), as_json)


@caps_app.command("set")
def caps_set(
    rules: Annotated[
        list[str], typer.Argument(help="Caps as CALLS/WINDOW: 3/24h 1/1h (units s, m, h, d).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Replace the client's caps (a call must fit every one; one that would not waits)."""
    with reporting(as_json):
        try:
            parsed = [parse_rule(text) for text in rules]
        except ValueError as exc:
            raise RemoteError(str(exc), error="invalid_input") from None
        body = {"rules": [{"max_calls": r.max_calls, "window_seconds": r.window_seconds}
                          for r in parsed]}  # fmt: skip
        _caps(remote().call("PUT", "/frequency_caps/", json=body), as_json)


@caps_app.command("clear")
def caps_clear(as_json: JsonOpt = False) -> None:
    """Remove every cap of the client."""
    with reporting(as_json):
        _caps(remote().call("PUT", "/frequency_caps/", json={"rules": []}), as_json)


@callerid_app.command("show")
def callerid_show(as_json: JsonOpt = False) -> None:
    """The client's allowed caller ids."""
    with reporting(as_json):
        _ids(remote().call("GET", "/caller_ids/"), as_json)


@callerid_app.command("set")
def callerid_set(
    numbers: Annotated[list[str], typer.Argument(help="Numbers; a prefix ends with * ('+331*').")],
    as_json: JsonOpt = False,
) -> None:
    """Replace the client's allowed caller ids (tasks naming another one are refused)."""
    with reporting(as_json):
        _ids(remote().call("PUT", "/caller_ids/", json={"caller_ids": numbers}), as_json)


@callerid_app.command("clear")
def callerid_clear(as_json: JsonOpt = False) -> None:
    """Remove the list: any caller id is allowed again."""
    with reporting(as_json):
        _ids(remote().call("PUT", "/caller_ids/", json={"caller_ids": []}), as_json)
