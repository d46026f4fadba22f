"""``ringback --help``, every sub-command's ``--help`` and ``ringback remote …`` start without
importing the heavy parts (the database layer, the API app, numpy, the engine, the IVR, SIP): what a
command needs is imported when it runs, so help answers in a fraction of a second."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: (not pydantic: typer itself converts option values with it)
HEAVY = ("sqlalchemy", "fastapi", "numpy", "ringback.engine", "ringback.store",
         "ringback.service", "ringback.api", "ringback.ivr", "ringback.telephony.sip")  # fmt: skip
#: every local command group and command: their help (and completion) shows without the heavy
#: parts; `ringback serve --help` may load what serving needs only when it runs
LOCAL_HELPS = (["queue"], ["queue", "add"], ["task"], ["task", "add"], ["task", "list"],
               ["client"], ["client", "create"], ["dnc"], ["dnc", "add"], ["caps"], ["callerid"],
               ["ivr"], ["ivr", "run"], ["serve"], ["worker"], ["migrate"], ["status"])  # fmt: skip
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


@pytest.mark.parametrize(
    "args",
    [[], ["remote"], ["remote", "task"], *LOCAL_HELPS],
    ids=lambda args: " ".join(args) or "top",
)
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    found = _probe(*args, "--help")
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
