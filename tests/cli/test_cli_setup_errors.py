"""When the machine or the settings do not let ringback start — a port in use, a database it
cannot reach, a bad setting — it says so in one line with what to do, exits 2 and prints no
traceback (``--debug`` adds it). The real program runs in a subprocess: real exit code, real
stderr."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ringback import __version__
from ringback.cli import app

TIMEOUT_S = 60

pytestmark = pytest.mark.slow  # each test starts the real program (about 2 s of imports)


def run_real(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RINGBACK_")}
    return subprocess.run(
        [sys.executable, "-m", "ringback", *args],
        env={
            **clean,
            "RINGBACK_DATABASE_URL": f"sqlite:///{home / 'rb.db'}",
            "RINGBACK_STORAGE_DIR": str(home / "storage"),
            "COLUMNS": "80",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def test_serve_on_a_port_in_use_exits_2_with_one_line_naming_the_port_option(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_real(tmp_path, "serve", "--port", str(port))
    assert done.returncode == 2, done.stderr
    line = one_line(done.stderr)  # no "worker started", no uvicorn lines, no traceback
    assert f"127.0.0.1:{port}" in line
    assert "--port" in line and "RINGBACK_PORT" in line


def test_an_unreachable_database_exits_2_saying_what_to_check(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://nobody:secret@127.0.0.1:{port}/x"
    done = run_real(tmp_path, "migrate", RINGBACK_DATABASE_URL=url)
    assert done.returncode == 2, done.stderr
    line = one_line(done.stderr)
    assert "cannot open the database" in line and "RINGBACK_DATABASE_URL" in line
    assert "secret" not in line  # the password is never printed


def test_a_bad_setting_exits_2_naming_the_variable(tmp_path: Path) -> None:
    done = run_real(tmp_path, "migrate", RINGBACK_PORT="eighty")
    assert done.returncode == 2, done.stderr
    assert "RINGBACK_PORT" in one_line(done.stderr)


def test_debug_adds_the_traceback_before_the_line(tmp_path: Path) -> None:
    done = run_real(tmp_path, "--debug", "migrate", RINGBACK_PORT="eighty")
    assert done.returncode == 2
    assert "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")


def test_refused_input_still_exits_1(tmp_path: Path) -> None:
    done = run_real(tmp_path, "task", "add", "--queue", "nope", "--to", "33612345678")
    assert done.returncode == 1, done.stderr


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"ringback {__version__}"


def test_migrate_json_prints_the_schema_version_and_errors_as_json(tmp_path: Path) -> None:
    done = run_real(tmp_path, "migrate", "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["schema_version"] >= 1 and shown["database"].startswith("sqlite")
    bad = run_real(tmp_path, "migrate", "--json", RINGBACK_PORT="eighty")
    assert bad.returncode == 2
    error = json.loads(bad.stderr)
    assert error["error"] == "setup" and "RINGBACK_PORT" in error["message"]


def test_a_local_command_under_json_reports_refused_input_as_json(tmp_path: Path) -> None:
    done = run_real(tmp_path, "queue", "add", "q1", "--hours", "nonsense", "--json")
    assert done.returncode == 1, done.stderr
    error = json.loads(done.stderr)
    assert error["error"] == "invalid_input" and error["message"]
