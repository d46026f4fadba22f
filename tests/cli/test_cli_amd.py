"""``ringback task add --amd POLICY``: a task's answering-machine detection policy."""

from __future__ import annotations

from pathlib import Path

from test_cli import ringback


def test_a_task_takes_an_amd_policy_and_a_wrong_one_is_one_error_line(tmp_path: Path) -> None:
    added = ringback(tmp_path, "task", "add", "--to", "0311", "--from", "0322",
                     "--audio-file", "hi.wav", "--amd", "wait_for_beep", "--json")  # fmt: skip
    assert added.code == 0, added.stderr
    [task_id] = added.json()["ids"]
    shown = ringback(tmp_path, "task", "show", str(task_id), "--json").json()
    assert shown["data"]["amd"] == "wait_for_beep"
    wrong = ringback(tmp_path, "task", "add", "--to", "0311", "--from", "0322",
                     "--audio-file", "hi.wav", "--amd", "maybe")  # fmt: skip
    assert wrong.code == 1 and "--amd" in wrong.stderr
