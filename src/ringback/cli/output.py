"""The consoles and tables every ``ringback`` command prints with (light: rich only, so that
the remote commands start fast).

rich itself (~2.5 MiB) is imported when something is first printed: a worker process, which
prints nothing but its log lines, never loads it (bench/worker_rss.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ringback.domain.digits import ascii_digits

if TYPE_CHECKING:
    from rich.console import Console, ConsoleDimensions, RenderableType
    from rich.table import Table

PIPE_WIDTH = 160  # into a pipe or a file, tables are not squeezed into 80 columns
MIN_WRAPPED_WIDTH = 10  # a wrapping column narrower than this (or its header) is unreadable


def _stdout() -> Console:
    from rich.console import Console, ConsoleDimensions

    class _Output(Console):
        """Standard output. Lines of text are never wrapped by us (the terminal wraps them), so
        nothing a command prints depends on the width; only tables fit it (:func:`print_table`).

        The width is looked up at each print, not once at import: ``COLUMNS`` when set, else the
        terminal's width, else (a pipe, a file) :data:`PIPE_WIDTH`.
        """

        @property
        def size(self) -> ConsoleDimensions:
            columns = os.environ.get("COLUMNS", "")
            if ascii_digits(columns) and int(columns) > 0:
                return ConsoleDimensions(int(columns), super().size.height)
            if self.is_terminal:
                return super().size
            return ConsoleDimensions(PIPE_WIDTH, super().size.height)

        @size.setter
        def size(self, new_size: tuple[int, int]) -> None:
            raise AttributeError("the width of ringback's output follows COLUMNS or the terminal")

    return _Output(soft_wrap=True)


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)  # errors are never wrapped mid-sentence


class _Deferred:
    """A console made (and rich imported) at its first use; every attribute is the console's."""

    def __init__(self, make: Callable[[], Console]) -> None:
        self._make = make
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            self._console = self._make()
        return getattr(self._console, name)


out = cast("Console", _Deferred(_stdout))
err = cast("Console", _Deferred(_stderr))


def escape(text: str) -> str:
    """``text`` printed as it is (rich's markup escaped)."""
    from rich.markup import escape as escaped

    return escaped(text)


class _Debug:
    """``ringback --debug``: errors print their traceback before their one line."""

    on = False


debug = _Debug()


class _JsonErrors:
    """``--json`` given to a local command: its error is one JSON object on stderr,
    ``{"error": kind, "message": ..., "details": [...]}``, as the remote commands print."""

    on = False


json_errors = _JsonErrors()


def json_mode(value: bool) -> bool:
    """The ``--json`` option's callback: errors of this command print as JSON."""
    if value:
        json_errors.on = True
    return value


def make_table(*columns: str, wrap: tuple[str, ...] = (), title: str | None = None) -> Table:
    """A table whose cells are kept whole, except in the columns named in ``wrap`` (free text),
    which wrap, and fold words too long for them. Print it with :func:`print_table`."""
    from rich.table import Column, Table

    return Table(
        *(
            Column(name, no_wrap=name not in wrap, overflow="fold" if name in wrap else "ellipsis")
            for name in columns
        ),
        title=title,
    )


def print_table(table: Table, console: Console = out) -> None:
    """Print every row, column, header and cell of ``table``, whatever the width.

    A table of :func:`make_table` is printed as it is when it fits the console; else with its
    wrapping columns narrowed (never below their header nor :data:`MIN_WRAPPED_WIDTH`) when
    that is enough; else as one block of ``header: value`` lines per row, whose values wrap.
    Rich left alone would cut cells to ``…`` and drop whole columns instead.
    """
    from rich.measure import Measurement
    from rich.segment import Segment

    width = console.width
    wide = console.options.update_width(100_000)
    natural = max(
        (Segment.get_line_length(line) for line in console.render_lines(table, wide, pad=False)),
        default=0,
    )
    if natural <= width:
        console.print(table)
        return

    def widest(*cells: RenderableType) -> int:
        return max(Measurement.get(console, wide, cell).maximum for cell in cells)

    content = [widest(col.header, *col.cells) for col in table.columns]
    borders_and_padding = natural - sum(content)
    floors = [
        size if col.no_wrap else min(size, max(MIN_WRAPPED_WIDTH, widest(col.header)))
        for col, size in zip(table.columns, content, strict=True)
    ]
    spare = width - borders_and_padding - sum(floors)
    if spare < 0:
        _print_records(table, console)
        return
    lacking = sum(size - floor for size, floor in zip(content, floors, strict=True))
    for col, size, floor in zip(table.columns, content, floors, strict=True):
        if not col.no_wrap:  # the room left, shared in proportion to what each one lacks
            col.width = floor + (spare * (size - floor)) // max(1, lacking)
    console.print(table)


def _print_records(table: Table, console: Console) -> None:
    """``table`` as one block of ``header: value`` lines per row (too wide for the console)."""
    from rich.table import Table

    if table.title:
        console.print(table.title, style="bold")
    headers = [f"{col.header}:" for col in table.columns]
    rows = list(zip(*(list(col.cells) for col in table.columns), strict=True))
    if not rows:
        console.print(f"no rows ({', '.join(str(col.header) for col in table.columns)})")
    for index, row in enumerate(rows):
        if index:
            console.print()
        record = Table.grid(padding=(0, 1))
        record.add_column(style="bold", overflow="fold")
        record.add_column(overflow="fold")
        for header, cell in zip(headers, row, strict=True):
            record.add_row(header, cell)
        console.print(record)
