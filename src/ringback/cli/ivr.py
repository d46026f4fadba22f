"""``ringback ivr check FILE…`` and ``ringback ivr run FILE``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ringback.cli.common import err, out
from ringback.ivr.errors import IvrError
from ringback.ivr.parse import MAX_DOCUMENT_BYTES, parse

ivr_app = typer.Typer(help="Check IVR documents and try them on a simulated call.")


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise IvrError(f"cannot read the file: {exc.strerror or exc}") from exc
    return data


@ivr_app.command("check")
def ivr_check(
    files: Annotated[list[Path], typer.Argument(help="IVR XML documents to validate.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")] = False,
) -> None:
    """Validate IVR documents: exit 0 when all are valid, 1 printing every error."""
    failed = 0
    for path in files:
        try:
            document = parse(_read(path))
        except IvrError as exc:
            failed += 1
            where = f"{path}:{exc.line}" if exc.line else str(path)
            err.print(f"[red]{escape(where)}[/red]: {escape(exc.message)}")
            continue
        if not quiet:
            count = sum(1 for _ in document.root.walk())
            out.print(f"{escape(str(path))}: ok ({count} elements)")
    if failed:
        err.print(f"{failed} of {len(files)} document(s) invalid")
        raise typer.Exit(1)
