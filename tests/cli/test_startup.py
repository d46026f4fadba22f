"""``ringback --help`` and ``ringback remote --help`` start without importing the heavy parts
(the database layer, the API app, numpy, the engine): the sub-commands are imported when run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "fastapi", "numpy", "ringback.engine", "ringback.store", "ringback.service",
         "ringback.api")  # fmt: skip
PROBE = """
import json, sys
from typer.testing import CliRunner
from ringback.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
print(json.dumps({"code": result.exit_code, "output": result.output,
                  "modules": sorted(m for m in sys.modules)}))
"""


def _probe(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    found: dict[str, object] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize("args", [["--help"], ["remote", "--help"], ["remote", "task", "--help"]])
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    found = _probe(*args)
    assert found["code"] == 0, found["output"]
    modules = found["modules"]
    assert isinstance(modules, list)
    loaded = [name for name in modules if name.split(".")[0] in HEAVY or name in HEAVY
              or any(name.startswith(heavy + ".") for heavy in HEAVY)]  # fmt: skip
    assert loaded == []


def test_top_help_lists_every_command_and_shell_completion() -> None:
    output = str(_probe("--help")["output"])
    for command in (
        "queue",
        "task",
        "client",
        "ivr",
        "remote",
        "serve",
        "worker",
        "migrate",
        "status",
        "--install-completion",
        "--version",
    ):
        assert command in output, command  # fmt: skip
