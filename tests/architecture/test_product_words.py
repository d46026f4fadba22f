"""What users read — the OpenAPI document (route summaries, descriptions, schema docs), every
CLI command's help and the error messages the code builds — uses the product's words, never
the project's internal ones (the documents it was built from, design-note sections)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from ringback.api.app import create_app
from ringback.cli import app as cli_app
from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.config import Settings
from ringback.service import Services

SRC = Path(__file__).resolve().parents[2] / "src" / "ringback"
INTERNAL = re.compile(r"\bseeds?\b|ucom4b|DESIGN(\.md)?\b|§|\bseed-spec\b", re.IGNORECASE)


def _paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command under ``command`` (typer's own click types), as argument lists."""
    found = [path]
    load_all = getattr(command, "load_all", None)  # the lazy sub-commands, imported
    commands = load_all() if load_all is not None else getattr(command, "commands", {})
    for name, sub in commands.items():
        found.extend(_paths(sub, (*path, name)))
    return found


def _helps() -> dict[str, str]:
    runner = CliRunner()
    helps = {}
    for path in _paths(typer.main.get_command(cli_app)):
        result = runner.invoke(cli_app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        helps[" ".join(("ringback", *path))] = result.output
    return helps


def test_the_openapi_document_has_no_internal_words(tmp_path: Path) -> None:
    services = Services(None, SystemClock(), storage=Storage(tmp_path))  # type: ignore[arg-type]
    text = json.dumps(create_app(services, Settings()).openapi(), ensure_ascii=False)
    assert INTERNAL.findall(text) == []


def test_no_cli_help_has_internal_words() -> None:
    helps = _helps()
    assert len(helps) > 10 and "Create a queue" in helps["ringback queue add"]
    leaks = {path: INTERNAL.findall(text) for path, text in helps.items()}
    assert {path: words for path, words in leaks.items() if words} == {}


def test_no_message_built_in_the_code_has_internal_words() -> None:
    """String literals that are not docstrings (messages, help, summaries)."""
    leaks = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and INTERNAL.search(node.value)
            ):
                leaks.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.value[:80]!r}")
    assert leaks == []
