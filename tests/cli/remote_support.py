"""What the remote CLI's tests share: one real ``ringback serve`` per module (the API tests'
``run_server``, reused from tests/api/conftest.py), a logged-in profile per test, and
``ringback ARGS`` run in this process (typer's runner) or as the real program."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

from ringback.cli import app

TIMEOUT_S = 60.0


def api_conftest() -> ModuleType:
    """tests/api/conftest.py under another name (every conftest.py is module "conftest")."""
    path = Path(__file__).resolve().parents[1] / "api" / "conftest.py"
    spec = importlib.util.spec_from_file_location("api_live_support", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("api_live_support", module)
    spec.loader.exec_module(module)
    return module


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, f"exit {self.code}\nstdout: {self.stdout}\nstderr: {self.stderr}"
        return json.loads(self.stdout)

    def error(self, code: int) -> dict[str, Any]:
        """Under --json: the exit code, nothing on stdout, one JSON error on stderr."""
        assert self.code == code, f"exit {self.code}\nstdout: {self.stdout}\nstderr: {self.stderr}"
        body: dict[str, Any] = json.loads(self.stderr.strip().splitlines()[-1])
        assert body["error"] and body["message"], body
        return body


@dataclass
class Operator:
    """A profile logged in to the module's server (its config folder is the test's own)."""

    config: Path
    url: str
    key: str
    secret: str
    client: int

    def env(self, **extra: str) -> dict[str, str]:
        return {"XDG_CONFIG_HOME": str(self.config), "RINGBACK_PROFILE": "", **extra}

    def __call__(self, *args: str | Path, input: str | None = None, real: bool = False) -> Ran:
        """``ringback ARGS`` (``real``: the real program, in a subprocess)."""
        argv = [str(arg) for arg in args]
        if real:
            env = {k: v for k, v in os.environ.items() if not k.startswith("RINGBACK_")}
            done = subprocess.run(
                [sys.executable, "-m", "ringback", *argv],
                env={**env, **self.env(), "COLUMNS": "200"}, input=input, capture_output=True,
                text=True, timeout=TIMEOUT_S, check=False,
            )  # fmt: skip
            return Ran(done.returncode, done.stdout, done.stderr)
        result = CliRunner().invoke(app, argv, env=self.env(), input=input, catch_exceptions=False)
        return Ran(result.exit_code, result.stdout, result.stderr)

    def login(self, **overrides: str) -> Ran:
        fields = {"url": self.url, "client_id": self.key, "client_secret": self.secret,
                  **overrides}  # fmt: skip
        return self(
            "remote", "login", "--url", fields["url"], "--client-id", fields["client_id"],
            "--client-secret", fields["client_secret"], "--json",
        )  # fmt: skip


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something true (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def remote_server(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Any]:
    """A live ``ringback serve`` on SQLite in a folder of its own (one per test module)."""
    with api_conftest().run_server("sqlite", tmp_path_factory.mktemp(name)) as live:
        yield live


def logged_in(server: Any, tenant: Any, config: Path) -> Operator:
    """A profile 'default' logged in to ``server`` as ``tenant``, kept in the folder ``config``."""
    operator = Operator(config, server.url, tenant.key, tenant.secret, tenant.id)
    operator.login().json()
    return operator
