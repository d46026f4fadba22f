"""Every file in examples/ works as its README says: the IVR documents are valid and run, the
task file adds its tasks, the simulator rules load, the audio maker writes a playable WAV, and
the webhook receiver accepts a request ringback signed and refuses one it did not."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from ringback.cli import app
from ringback.config import SipSettings
from ringback.telephony.audio_files import audio_seconds
from ringback.telephony.sim import load_sim_rules
from ringback.telephony.sip.trunks import load_trunks
from ringback.webhooks.signing import signature_header

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_ivr_document_is_valid() -> None:
    documents = sorted(str(p) for p in (EXAMPLES / "ivr").glob("*.xml"))
    assert len(documents) >= 4
    result = CliRunner().invoke(app, ["ivr", "check", *documents])
    assert result.exit_code == 0, result.output


def test_the_example_menu_sends_a_caller_pressing_1_to_sales() -> None:
    result = CliRunner().invoke(
        app, ["ivr", "run", str(EXAMPLES / "ivr" / "menu.xml"), "--digits", "1", "--offline"]
    )
    assert result.exit_code == 0, result.output
    assert "Our sales team will call you back." in result.output


def test_the_example_task_file_adds_its_three_tasks(tmp_path: Path) -> None:
    env = {
        "RINGBACK_DATABASE_URL": f"sqlite:///{tmp_path / 'rb.db'}",
        "RINGBACK_STORAGE_DIR": str(tmp_path / "storage"),
    }
    runner = CliRunner()
    assert runner.invoke(app, ["queue", "add", "sales"], env=env).exit_code == 0
    added = runner.invoke(
        app, ["task", "add", "--file", str(EXAMPLES / "tasks.json"), "--queue", "sales", "--json"],
        env=env,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout) == {"ids": [1, 2, 3]}


def test_the_example_simulator_rules_load() -> None:
    rules = load_sim_rules(EXAMPLES / "sim.toml")
    assert rules.behaviour_for("33612345486").sip_code == 486
    assert rules.behaviour_for("33699000000").dtmf == "1"


def test_the_example_trunks_file_loads_three_trunks_with_their_rules() -> None:
    base = SipSettings(proxy_host="", caller_id="ringback")
    fr, campaigns, backup = load_trunks(EXAMPLES / "trunks.toml", base)
    assert fr.settings.srv and fr.prefixes == ("+33",) and fr.max_concurrent_calls == 60
    assert campaigns.queues == (7,) and not campaigns.settings.srv
    assert backup.default and backup.settings.options_interval_s == 30


def test_the_audio_maker_writes_a_one_second_wav(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "make_hello_wav.py"), str(tmp_path / "1" / "hello.wav")],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert audio_seconds(Path(done.stdout.strip())) == pytest.approx(1.0)


def test_the_webhook_receiver_accepts_what_ringback_signed_and_refuses_the_rest() -> None:
    receiver = _module("webhook_receiver")
    receiver.Receiver.secret = "s3cret"
    server = receiver.ThreadingHTTPServer(("127.0.0.1", 0), receiver.Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    body = b'{"type": "task.finished"}'

    def post(signature: str) -> int:
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Ringback-Signature": signature, "Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as refused:
            return refused.code

    try:
        now = int(time.time())
        assert post(signature_header(["s3cret"], now, body)) == 204
        assert post(signature_header(["other"], now, body)) == 401
        assert post(signature_header(["s3cret"], now - 3600, body)) == 401  # a replay
        assert post(signature_header(["old", "s3cret"], now, body)) == 204  # during a rotation
    finally:
        server.shutdown()
        server.server_close()
