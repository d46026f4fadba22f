"""The service's log: under ``RINGBACK_LOG_FORMAT=json`` every line on stderr is one JSON
object (uvicorn's, the worker's and the API's alike); every API request has an id — the
client's ``X-Request-ID`` or a new one — returned in the response and on its log line; a call
placed and a call ended each give one line naming the task, attempt and leg."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import httpx
import pytest

from support_webhooks import free_port

pytestmark = pytest.mark.slow  # starts `ringback serve`

DEADLINE_S = 30


def _env(home: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RINGBACK_")}
    return {
        **clean,
        "RINGBACK_DATABASE_URL": f"sqlite:///{home / 'rb.db'}",
        "RINGBACK_STORAGE_DIR": str(home / "storage"),
        **extra,
    }


def _cli(home: Path, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "ringback", *args, "--json"],
        env=_env(home), capture_output=True, text=True, timeout=DEADLINE_S, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def _wav(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(1600))


def test_json_logs_are_one_object_per_line_with_request_ids_and_call_lines(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "sim.toml"
    rules.write_text("[defaults]\nring_seconds = 0.1\n")
    _wav(tmp_path / "storage" / "1" / "hello.wav")
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "ringback", "serve", "--port", str(port)],
            env=_env(tmp_path, RINGBACK_LOG_FORMAT="json", RINGBACK_SIM_RULES=str(rules)),
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                given = httpx.get(f"{url}/healthz", headers={"X-Request-ID": "probe-1"})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        assert given.headers["X-Request-ID"] == "probe-1"
        made = httpx.get(f"{url}/healthz", headers={"X-Request-ID": "no spaces allowed"})
        made_id = made.headers["X-Request-ID"]
        assert made_id != "no spaces allowed" and len(made_id) == 32  # a new one instead

        task_id = _cli(
            tmp_path, "task", "add", "--to", "33612345678", "--from", "100",
            "--audio-file", "hello.wav",
        )["ids"][0]  # fmt: skip
        while _cli(tmp_path, "task", "show", str(task_id))["status"] != "finished":
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=DEADLINE_S) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)

    lines = [json.loads(line) for line in log_path.read_text().splitlines()]  # all JSON
    assert all({"timestamp", "level", "logger", "event"} <= set(line) for line in lines)
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "ringback.worker", "ringback.api"} <= loggers, loggers
    requests = {line.get("request_id"): line for line in lines if line["event"] == "request"}
    assert requests["probe-1"]["path"] == "/healthz" and requests["probe-1"]["status"] == 200
    assert made_id in requests
    placed = [line for line in lines if line["event"] == "call placed"]
    ended = [line for line in lines if line["event"] == "call ended"]
    assert [(p["task_id"], p["attempt"]) for p in placed] == [(task_id, 1)]
    assert ended[0]["leg"] == placed[0]["leg"]
    assert ended[0]["outcome"] == "answered" and ended[0]["sip_code"] == 200
    assert "33612345678" not in log_path.read_text()  # numbers are not logged


def test_a_bad_log_format_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ringback", "serve"],
        env=_env(tmp_path, RINGBACK_LOG_FORMAT="xml"),
        capture_output=True, text=True, timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == "error: RINGBACK_LOG_FORMAT='xml': use console or json"
