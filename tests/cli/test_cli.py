"""The ``ringback`` command, driven as a user drives it.

Bad input runs the real program (``python -m ringback`` in a subprocess) to check the real exit
code and stderr, and proves nothing changed by comparing every row of the database before and
after. Happy paths run in-process through typer's runner (same code, no interpreter start-up).
The end-to-end test starts ``ringback serve`` (killed by PID at the end), adds a task from the
CLI and watches it finish.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ringback.cli import app
from support import kill_group

TIMEOUT_S = 30


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, f"exit {self.code}\nstdout: {self.stdout}\nstderr: {self.stderr}"
        return json.loads(self.stdout)


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    return {
        "RINGBACK_DATABASE_URL": f"sqlite:///{home / 'rb.db'}",
        "RINGBACK_STORAGE_DIR": str(home / "storage"),
        **extra,
    }


def ringback(home: Path, *args: str | Path, real: bool = False) -> Ran:
    """Run ``ringback ARGS`` against the database and storage in ``home``.

    ``real=True`` runs ``python -m ringback`` in a subprocess (real exit code, real stderr);
    otherwise typer's runner calls the same app in this process.
    """
    argv = [str(arg) for arg in args]
    if real:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RINGBACK_")}
        done = subprocess.run(
            [sys.executable, "-m", "ringback", *argv],
            env={**env, **cli_env(home), "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        return Ran(done.returncode, done.stdout, done.stderr)
    result = CliRunner().invoke(app, argv, env=cli_env(home), catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


def db_rows(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a command could change."""
    conn = sqlite3.connect(home / "rb.db")
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            for table in ("clients", "queues", "tasks", "calls", "events")
        }
    finally:
        conn.close()


def write_wav(path: Path, seconds: float = 0.1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * int(8000 * seconds))


#: a test that runs the real program is slow (interpreter start-up and imports: about 2 s on a
#: loaded 2-core machine); test_task_add_to_an_unknown_queue_is_refused_and_changes_nothing keeps
#: one such run in the quick suite
REAL_PROGRAM = pytest.mark.slow

MSG = ["--to", "33612345678", "--from", "100", "--audio-file", "hello.wav"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A database with queue 'sales' (off) holding one task, and hello.wav in client 1's storage."""
    assert ringback(tmp_path, "queue", "add", "sales").code == 0
    assert ringback(tmp_path, "task", "add", "--queue", "sales", *MSG).code == 0
    write_wav(tmp_path / "storage" / "1" / "hello.wav")
    return tmp_path


def refused(home: Path, *args: str | Path) -> str:
    """Run a command that must be refused: non-zero exit, nothing changed; returns stderr."""
    before = db_rows(home)
    tasks_before = ringback(home, "task", "list", "--json").json()
    ran = ringback(home, *args, real=True)
    assert ran.code != 0, ran.stdout
    assert "Traceback" not in ran.stderr
    assert ran.stderr.startswith("error: "), ran.stderr
    assert ran.stdout == ""
    assert db_rows(home) == before
    assert ringback(home, "task", "list", "--json").json() == tasks_before
    return ran.stderr


# --- bad input: a clear error, a non-zero exit, nothing changed -----------------------------


@REAL_PROGRAM
def test_task_file_that_is_not_json_is_refused_naming_line_and_column(home: Path) -> None:
    bad = home / "tasks.json"
    bad.write_text('[\n  {"a_number": "101",\n   "b_number": "201"\n  {"a_number": "102"}\n]\n')
    stderr = refused(home, "task", "add", "--file", bad)
    assert f"{bad}: invalid JSON at line 4 column 3" in stderr


def test_task_add_to_an_unknown_queue_is_refused_and_changes_nothing(home: Path) -> None:
    stderr = refused(home, "task", "add", "--queue", "nope", *MSG)
    assert "no queue named 'nope'" in stderr
    assert "ringback queue add nope" in stderr


@REAL_PROGRAM
def test_task_file_naming_an_unknown_queue_is_refused_and_changes_nothing(home: Path) -> None:
    jobs = home / "jobs.json"
    job = {"type": "msg_call", "queue": "nope", "data": {"calling_number": "100"}}
    job["data"] |= {"called_number": "33612345678", "audio_file": "hello.wav"}
    jobs.write_text(json.dumps([job]))
    assert "no queue named 'nope'" in refused(home, "task", "add", "--file", jobs)


@REAL_PROGRAM
def test_task_add_with_attempts_0_is_refused_and_changes_nothing(home: Path) -> None:
    stderr = refused(home, "task", "add", *MSG, "--attempts", "0")
    assert "--attempts: Input should be greater than or equal to 1" in stderr


@REAL_PROGRAM
def test_task_add_with_try_count_51_is_refused_and_changes_nothing(home: Path) -> None:
    args = ["--a-number", "100", "--b-number", "200", "--try-count", "51"]
    stderr = refused(home, "task", "add", *args)
    assert "--try-count: Input should be less than or equal to 50" in stderr


@REAL_PROGRAM
def test_task_file_with_one_try_count_51_among_good_tasks_stores_none(home: Path) -> None:
    good_job = {
        "type": "msg_call",
        "data": {"calling_number": "100", "called_number": "33612345678", "audio_file": "a.wav"},
    }
    tasks = [
        good_job,
        {"a_number": "101", "b_number": "201", "try_count": 3},
        {"a_number": "102", "b_number": "202", "try_count": 51},
        {"a_number": "103", "b_number": "203"},
    ]
    path = home / "tasks.json"
    path.write_text("[\n" + ",\n".join(json.dumps(task) for task in tasks) + "\n]\n")
    stderr = refused(home, "task", "add", "--file", path)
    assert "1 problem(s) in 4 task(s); nothing was added" in stderr
    assert "line 4, [2].try_count: Input should be less than or equal to 50" in stderr


@REAL_PROGRAM
def test_task_add_with_an_unknown_time_zone_is_refused_and_changes_nothing(home: Path) -> None:
    stderr = refused(home, "task", "add", *MSG, "--timezone", "Mars/Base")
    assert "--timezone: unknown time zone 'Mars/Base'" in stderr


@REAL_PROGRAM
@pytest.mark.parametrize(
    ("hours", "says"),
    [
        ("Mars/Base mon-fri 09:00-18:00", "unknown time zone 'Mars/Base'"),
        ("Europe/Paris mon-fru 09:00-18:00", "bad day 'fru'"),
    ],
    ids=["unknown-zone", "unknown-day"],
)
def test_queue_add_with_bad_calling_hours_is_refused_and_changes_nothing(
    home: Path, hours: str, says: str
) -> None:
    stderr = refused(home, "queue", "add", "evening", "--hours", hours)
    assert f"error: calling hours: {says}" in stderr


@REAL_PROGRAM
def test_task_add_with_a_malformed_number_is_refused_and_changes_nothing(home: Path) -> None:
    stderr = refused(home, "task", "add", "--to", "abc", "--from", "100", "--audio-file", "x")
    assert "--to: 'abc' is not a phone number" in stderr


@REAL_PROGRAM
def test_task_file_with_an_unknown_field_is_refused_naming_it(home: Path) -> None:
    path = home / "tasks.json"
    lines = [
        "[",
        ' {"a_number": "101", "b_number": "201"},',
        ' {"a_number": "101",',
        '  "b_number": "201", "colour": "red"}',
        "]",
    ]
    path.write_text("\n".join(lines))
    stderr = refused(home, "task", "add", "--file", path)
    assert "line 3, [1].colour: unknown field 'colour'" in stderr


@REAL_PROGRAM
def test_queue_on_for_a_queue_that_does_not_exist_is_refused(home: Path) -> None:
    stderr = refused(home, "queue", "on", "nope")
    assert "no queue named 'nope'" in stderr


@REAL_PROGRAM
def test_queue_on_in_a_fresh_database_names_the_missing_queue(tmp_path: Path) -> None:
    ran = ringback(tmp_path, "queue", "on", "sales", real=True)
    assert ran.code == 1
    assert ran.stderr.startswith("error: no queue named 'sales'")


@REAL_PROGRAM
def test_task_add_with_flags_of_another_kind_is_refused_and_changes_nothing(home: Path) -> None:
    stderr = refused(home, "task", "add", *MSG, "--try-count", "3")
    assert "--try-count: does not apply to a msg_call task (use --attempts)" in stderr


@REAL_PROGRAM
def test_task_add_with_a_storage_path_outside_the_client_folder_is_refused(home: Path) -> None:
    args = ["--to", "33612345678", "--from", "100", "--audio-file", "../2/secret.wav"]
    assert "--audio-file: storage path '../2/secret.wav' contains '..'" in refused(
        home, "task", "add", *args
    )


def test_bad_input_via_the_in_process_runner_is_refused_too(home: Path) -> None:
    ran = ringback(home, "task", "add", "--to", "33612345678")
    assert ran.code == 1
    assert "--from: required for a msg_call task" in ran.stderr
    assert "--audio-file: required for a msg_call task" in ran.stderr
    ran = ringback(home, "task", "list", "--status", "done")
    assert ran.code == 1
    assert "--status 'done': use one of scheduled" in ran.stderr


# --- happy paths --------------------------------------------------------------------------------


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    first = ringback(tmp_path, "migrate")
    second = ringback(tmp_path, "migrate")
    assert first.code == second.code == 0
    assert "schema at version" in first.stdout
    assert first.stdout == second.stdout


def test_queue_add_is_off_by_default_and_on_with_on(tmp_path: Path) -> None:
    (off,) = ringback(tmp_path, "queue", "add", "sales", "--json").json()
    (on,) = ringback(tmp_path, "queue", "add", "support", "--on", "--limit", "3", "--json").json()
    assert (off["name"], off["status"], off["concurrent_task_limit"]) == ("sales", "off", 10)
    assert (on["name"], on["status"], on["concurrent_task_limit"]) == ("support", "on", 3)
    ran = ringback(tmp_path, "queue", "add", "sales")
    assert ran.code == 1
    assert "a queue named 'sales' already exists" in ran.stderr


def test_a_queue_redials_interrupted_calls_only_when_switched_on(tmp_path: Path) -> None:
    (queue,) = ringback(tmp_path, "queue", "add", "sales", "--json").json()
    assert queue["redial_interrupted"] is False
    args = ["queue", "set", "sales", "--redial-interrupted", "--json"]
    assert ringback(tmp_path, *args).json()[0]["redial_interrupted"] is True
    args = ["queue", "set", "sales", "--no-redial-interrupted", "--json"]
    assert ringback(tmp_path, *args).json()[0]["redial_interrupted"] is False


def test_queue_set_changes_limit_and_calling_hours_and_removes_them(tmp_path: Path) -> None:
    ringback(tmp_path, "queue", "add", "sales")
    hours = "Europe/Paris mon-fri 09:00-18:00"
    args = ["queue", "set", "sales", "--limit", "4", "--hours", hours, "--json"]
    (queue,) = ringback(tmp_path, *args).json()
    assert queue["concurrent_task_limit"] == 4
    assert queue["calling_hours"] == {
        "timezone": "Europe/Paris",
        "windows": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
        ],
    }
    (queue,) = ringback(tmp_path, "queue", "set", "sales", "--no-hours", "--json").json()
    assert queue["calling_hours"] is None
    assert queue["concurrent_task_limit"] == 4


def test_queue_on_and_off_switch_the_queue(tmp_path: Path) -> None:
    ringback(tmp_path, "queue", "add", "sales")
    assert ringback(tmp_path, "queue", "on", "sales", "--json").json()[0]["status"] == "on"
    assert ringback(tmp_path, "queue", "off", "sales", "--json").json()[0]["status"] == "off"


def test_queue_list_counts_tasks_and_tasks_of_an_off_queue_are_blocked(home: Path) -> None:
    ringback(home, "task", "add", "--queue", "sales", *MSG)
    (sales,) = ringback(home, "queue", "list", "--json").json()
    assert (sales["task_count"], sales["sched_task_count"], sales["running"]) == (2, 2, 0)
    tasks = ringback(home, "task", "list", "--json").json()
    assert [(t["status"], t["blocked_reason"]) for t in tasks] == [("scheduled", "queue_off")] * 2


def test_task_add_with_flags_makes_msg_call_ivr_call_and_callback_tasks(tmp_path: Path) -> None:
    ivr = "<Response><Speak>Hello</Speak></Response>"
    ivr_args = ["--to", "33612345679", "--from", "100", "--ivr-inline", ivr]
    callback_args = ["--a-number", "101", "--b-number", "201", "--try-count", "2"]
    callback_args += ["--try-count-caller", "3", "--name", "cb"]
    ids = [
        ringback(tmp_path, "task", "add", *args, "--json").json()["ids"]
        for args in ([*MSG, "--attempts", "3"], ivr_args, callback_args)
    ]
    assert ids == [[1], [2], [3]]
    msg, ivr_call, callback = ringback(tmp_path, "task", "list", "--json").json()
    assert (msg["kind"], msg["try_count"], msg["data"]["audio_file"]) == (
        "msg_call",
        3,
        "hello.wav",
    )
    assert ivr_call["kind"] == "ivr_call"
    assert ivr_call["data"]["ivr_xml"] == {"type": "inline", "data": ivr}
    assert (callback["kind"], callback["name"], callback["try_count"]) == ("callback", "cb", 2)
    assert callback["try_count_caller"] == 3
    assert callback["data"]["a_number"] == "101"
    # tasks without --queue go to the client's 'default' queue, created switched on
    (default,) = ringback(tmp_path, "queue", "list", "--json").json()
    assert (default["name"], default["status"], default["task_count"]) == ("default", "on", 3)


def test_task_add_file_takes_addjob_objects_and_scheduler_tasks_in_order(home: Path) -> None:
    path = home / "tasks.json"
    path.write_text(
        json.dumps(
            {
                "tasks": [
                    {"a_number": "101", "b_number": "201", "try_count": 2},
                    {
                        "type": "msg_call",
                        "data": {
                            "calling_number": "100",
                            "called_number": "33612345486",
                            "audio_file": "hello.wav",
                        },
                        "options": {"attempts": 3, "backoff": {"type": "fixed", "delay": 5000}},
                    },
                    {
                        "type": "ivr_call",
                        "queue": "default",
                        "data": {
                            "calling_number": "100",
                            "called_number": "33612345678",
                            "ivr_xml": {"type": "inline", "data": "<Response><Hangup/></Response>"},
                        },
                    },
                ]
            }
        )
    )
    ran = ringback(home, "task", "add", "--file", path, "--queue", "sales", "--json")
    ids = ran.json()["ids"]  # in the order of the file
    assert sorted(ids) == [2, 3, 4]
    tasks = {t["id"]: t for t in ringback(home, "task", "list", "--json").json()}
    callback, msg, ivr = (tasks[i] for i in ids)
    assert [callback["kind"], msg["kind"], ivr["kind"]] == ["callback", "msg_call", "ivr_call"]
    queues = {q["name"]: q["id"] for q in ringback(home, "queue", "list", "--json").json()}
    assert callback["queue_id"] == msg["queue_id"] == queues["sales"]
    assert ivr["queue_id"] == queues["default"]  # its own "queue" wins over --queue
    assert (callback["try_count"], msg["try_count"]) == (2, 3)


def test_task_list_filters_by_status_and_status_reports_counts(home: Path) -> None:
    ringback(home, "task", "add", *MSG, "--delay-ms", "3600000")

    def ids(*args: str) -> list[int]:
        return [task["id"] for task in ringback(home, "task", "list", *args, "--json").json()]

    assert ids("--status", "scheduled") == [1, 2]
    assert ids("--status", "finished") == []
    assert ids("--queue", "sales") == [1]
    assert ids("--queue", "sales", "--status", "delayed") == []
    report = ringback(home, "status", "--json").json()
    assert report["counts"] == {"scheduled": 2}
    assert report["in_flight"] == 0
    assert report["next_due"] is not None  # the task in the 'default' queue, which is on
    assert sorted(q["name"] for q in report["queues"]) == ["default", "sales"]


def test_list_commands_on_a_fresh_database_show_nothing(tmp_path: Path) -> None:
    assert ringback(tmp_path, "task", "list", "--json").json() == []
    assert ringback(tmp_path, "queue", "list", "--json").json() == []
    assert ringback(tmp_path, "status", "--json").json()["counts"] == {}


# --- end to end -----------------------------------------------------------------------------


@pytest.mark.slow  # starts `ringback serve` / `ringback worker` processes
def test_serve_dials_a_task_added_from_the_cli_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "sim.toml"
    rules.write_text("[defaults]\nring_seconds = 0.1\n")
    write_wav(tmp_path / "storage" / "1" / "hello.wav")  # client 1: the first client
    log = (tmp_path / "serve.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGBACK_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "ringback", "serve"],
        env={**env, **cli_env(tmp_path, RINGBACK_SIM_RULES=str(rules))},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert ringback(tmp_path, "task", "add", *MSG, "--json").json() == {"ids": [1]}
        deadline = time.monotonic() + 90  # an upper bound: a loaded machine starts Python slowly
        while True:
            task = ringback(tmp_path, "task", "show", "1", "--json").json()
            if task["status"] == "finished" or time.monotonic() > deadline:
                break
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        assert (task["status"], task["finish_result"]) == ("finished", "success"), task
        (call,) = task["calls"]
        assert (call["outcome"], call["sip_code"]) == ("answered", 200)
        assert [Path(p["file"]).name for p in call["played"]] == ["hello.wav"]
        assert call["fax"] is None  # a call that did not fax
        events = [e["type"] for e in task["events"]]
        assert events[0] == "task.created"
        assert events[-1] == "task.finished"
        assert "call.answered" in events
        listed = ringback(tmp_path, "task", "list", "--status", "finished", "--json").json()
        assert [t["id"] for t in listed] == [1]

        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
        output = (tmp_path / "serve.log").read_text()
        assert "worker stopped" in output
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        log.close()


def start_group(home: Path, log: Any, *args: str) -> subprocess.Popen[bytes]:
    """``ringback ARGS`` as a process of its own, in a process group of its own (so that
    :func:`kill_group` ends it and every child it starts), its output to ``log``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGBACK_")}
    return subprocess.Popen(
        [sys.executable, "-m", "ringback", *args],
        env={**env, **cli_env(home)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_lines(log_path: Path, text: str, count: int, process: subprocess.Popen[bytes]) -> str:
    """The log once ``text`` appears ``count`` times in it (``process`` still running); an
    upper bound of 90 s: a loaded machine starts Python slowly."""
    deadline = time.monotonic() + 90
    while (output := log_path.read_text()).count(text) < count:
        assert time.monotonic() < deadline, output
        assert process.poll() is None, output
        time.sleep(0.1)
    return output


def started_children(output: str) -> list[int]:
    """The process ids of the children a ``--processes N`` parent says it started."""
    return [
        int(line.rsplit("pid=", 1)[1].split()[0])
        for line in output.splitlines()
        if "process started" in line and "pid=" in line
    ]


@pytest.mark.slow  # starts `ringback serve` / `ringback worker` processes
def test_worker_with_processes_2_runs_a_child_worker_and_stops_both_on_sigterm(
    tmp_path: Path,
) -> None:
    assert ringback(tmp_path, "migrate").code == 0
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    parent = start_group(tmp_path, log, "worker", "--processes", "2")
    try:
        children = started_children(wait_for_lines(log_path, "worker started", 2, parent))
        assert len(children) == 1
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=15) == 0
        assert log_path.read_text().count("worker stopped") == 2
        with pytest.raises(ProcessLookupError):
            os.kill(children[0], 0)  # the child is gone (and reaped)
    finally:
        kill_group(parent)  # the test failed half-way: the parent and its child, by group
        log.close()


@pytest.mark.slow  # starts `ringback serve` / `ringback worker` processes
def test_serve_with_processes_2_answers_the_api_from_both_and_stops_both_on_sigterm(
    tmp_path: Path,
) -> None:
    import httpx

    from support_webhooks import free_port

    port = free_port()
    log_path = tmp_path / "serve.log"
    log = log_path.open("wb")
    parent = start_group(tmp_path, log, "serve", "--processes", "2", "--port", str(port))
    try:
        output = wait_for_lines(log_path, "Application startup complete", 2, parent)
        servers = {int(found) for found in re.findall(r"Started server process \[(\d+)\]", output)}
        assert len(servers) == 2 and parent.pid in servers, log_path.read_text()
        for _ in range(4):  # one port, one listening socket, whichever process accepts
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=20) == 0
        assert log_path.read_text().count("Finished server process") == 2
        for pid in servers - {parent.pid}:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)  # the child is gone (and reaped)
    finally:
        kill_group(parent)  # the test failed half-way: the parent and its child, by group
        log.close()


async def test_connections_accepted_on_the_shared_api_socket_have_nagle_off() -> None:
    """``serve --processes N`` accepts from the socket ``_listen`` opens: its connections must
    have TCP_NODELAY, as uvicorn's own sockets have (a small answer would otherwise wait for
    the client's delayed ACK)."""
    import asyncio
    import socket

    from ringback.cli.serve import _listen
    from support_webhooks import free_port

    sock = _listen("127.0.0.1", free_port())
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = writer.get_extra_info("socket")
        accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=sock)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(*sock.getsockname()[:2]), TIMEOUT_S
        )
        assert await asyncio.wait_for(accepted, TIMEOUT_S) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
