"""Sub-commands imported only when run, so that ``ringback --help`` (and the remote commands)
start without importing the database layer, the engine or the API app.

A :class:`LazyGroup` lists its lazy sub-commands by name and one-line help; ``--help`` shows
them from that alone, and a sub-command's module is imported when it is run (or its own help
or completion is asked for)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer import _click as click  # typer's own click (vendored): its commands are of it
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True, slots=True)
class Lazy:
    module: str
    attribute: str  # a typer.Typer (a group) or a function (one command)
    help: str

    def load(self, name: str) -> click.Command:
        found: Any = getattr(importlib.import_module(self.module), self.attribute)
        if isinstance(found, typer.Typer):
            found._add_completion = False  # completion is the top command's option
            command = typer.main.get_command(found)
        else:
            single = typer.Typer(add_completion=False)
            single.command(name)(found)
            command = typer.main.get_command(single)
        command.name = name
        return command


class LazyGroup(TyperGroup):
    """A typer group whose :attr:`lazy` sub-commands are imported when first needed."""

    lazy: ClassVar[dict[str, Lazy]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._listing = False

    def load_all(self) -> dict[str, click.Command]:
        """Every sub-command, imported (for tests walking the whole command tree)."""
        for name in self.lazy:
            if name not in self.commands:
                self.commands[name] = self.lazy[name].load(name)
        return dict(self.commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.commands, *(name for name in self.lazy if name not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        lazy = self.lazy[cmd_name]
        if self._listing:  # the group's own help: the name and one line are enough
            return TyperCommand(name=cmd_name, help=lazy.help, short_help=lazy.help)
        command = lazy.load(cmd_name)
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
