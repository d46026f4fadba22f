"""``ringback worker`` as a worker process runs it: ``ringback worker`` and ``ringback worker
--processes 1`` (what each child of ``--processes N`` runs) name no option to read and start
without the command-line parser, so that the process does not load pydantic (typer imports it
to read a command's options) nor the intake's models: it dials stored tasks read with
:mod:`ringback.domain.payloads`. Every other form goes through typer as before."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from test_cli import MSG, cli_env, ringback, write_wav

from ringback.cli import main, service_commands
from support import kill_group

pytestmark = pytest.mark.slow  # starts `ringback worker` processes

#: ``python -m ringback ARGS`` that writes the names of the modules it held when it ends
_LISTING = (
    "import atexit, json, runpy, sys\n"
    "listing = sys.argv.pop(1)\n"
    "atexit.register(lambda: open(listing, 'w').write(json.dumps(sorted(sys.modules))))\n"
    "runpy.run_module('ringback', run_name='__main__', alter_sys=True)\n"
)
DONE_S = 90  # an upper bound on a loaded machine; the wait ends once the tasks finished


def outside_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RINGBACK_")}


def finished(home: Path) -> list[tuple[str, str | None]]:
    tasks = ringback(home, "task", "list", "--json").json()
    return [(t["kind"], t["finish_result"]) for t in tasks if t["status"] == "finished"]


@pytest.mark.parametrize("args", [("worker",), ("worker", "--processes", "1")])
def test_a_worker_process_dials_messages_and_callbacks_without_loading_pydantic(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    write_wav(tmp_path / "storage" / "1" / "hello.wav")
    assert ringback(tmp_path, "task", "add", *MSG).code == 0
    callback = ["--a-number", "101", "--b-number", "201", "--name", "cb"]
    assert ringback(tmp_path, "task", "add", *callback).code == 0
    listing, log_path = tmp_path / "modules.json", tmp_path / "worker.log"
    env = {**outside_env(), **cli_env(tmp_path), "RINGBACK_SIM_FAST": "1"}
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-c", _LISTING, str(listing), *args],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + DONE_S
            while len(done := finished(tmp_path)) < 2:
                assert worker.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0, log_path.read_text()
        finally:
            kill_group(worker)
    assert sorted(done) == [("callback", "success"), ("msg_call", "success")]
    held = json.loads(listing.read_text())
    assert "ringback.engine.worker" in held
    assert [m for m in held if m.split(".")[0] == "pydantic"] == []
    assert "ringback.domain.tasks" not in held


def test_a_worker_that_cannot_start_says_why_as_through_the_parser(tmp_path: Path) -> None:
    env = {**outside_env(), **cli_env(tmp_path), "RINGBACK_DATABASE_URL": "mysql://nowhere/rb"}
    ran = [
        subprocess.run(
            [sys.executable, "-m", "ringback", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        for args in (["worker"], ["worker", "--processes=1"])  # without the parser, through it
    ]
    assert [r.returncode for r in ran] == [2, 2], [r.stderr for r in ran]
    assert ran[0].stderr == ran[1].stderr
    assert ran[0].stderr.startswith("error: ") and "Traceback" not in ran[0].stderr


@pytest.mark.parametrize(
    ("raised", "code"), [(KeyboardInterrupt(), 130), (typer.Exit(2), 2), (typer.Exit(0), 0)]
)
def test_a_worker_started_without_the_parser_ends_with_the_exit_code_typer_gives(
    monkeypatch: pytest.MonkeyPatch, raised: BaseException, code: int
) -> None:
    def worker(processes: int | None = None) -> None:
        raise raised

    monkeypatch.setattr(service_commands, "worker", worker)
    monkeypatch.setattr(sys, "argv", ["ringback", "worker"])
    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == code
