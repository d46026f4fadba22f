"""``ringback caps`` and ``ringback callerid``: the local CLI of frequency caps and allowed
caller ids; bad input, and a task naming a caller id off the list, is one error line and exit 1."""

from __future__ import annotations

from pathlib import Path

from test_cli import ringback


def test_caps_are_set_shown_and_cleared_and_a_bad_one_is_one_line(tmp_path: Path) -> None:
    assert ringback(tmp_path, "caps", "show").stdout.strip() == "no frequency cap"
    done = ringback(tmp_path, "caps", "set", "3/24h", "1/h")
    assert done.code == 0 and "frequency caps: 1/1h, 3/1d" in done.stderr
    shown = ringback(tmp_path, "caps", "show", "--json").json()
    assert shown == {"rules": [{"max_calls": 1, "window_seconds": 3600},
                               {"max_calls": 3, "window_seconds": 86400}]}  # fmt: skip
    bad = ringback(tmp_path, "caps", "set", "3 per day")
    assert bad.code == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert "'3 per day' is not a cap: write CALLS/WINDOW" in bad.stderr
    assert ringback(tmp_path, "caps", "clear").code == 0
    assert ringback(tmp_path, "caps", "show").stdout.strip() == "no frequency cap"


def test_a_task_naming_a_caller_id_off_the_list_is_refused_in_one_line(tmp_path: Path) -> None:
    done = ringback(tmp_path, "callerid", "set", "0322*", "+33 1 84 80 00 00")
    assert done.code == 0 and "allowed caller ids: +33184800000 0322*" in done.stderr
    assert ringback(tmp_path, "callerid", "show", "--json").json() == {
        "caller_ids": ["+33184800000", "0322*"]
    }
    task = ("task", "add", "--to", "0311", "--audio-file", "hi.wav")
    refused = ringback(tmp_path, *task, "--from", "0999")
    assert refused.code == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "calling_number: caller id '0999' is not on the client's allowed caller ids" in (
        refused.stderr
    )
    assert ringback(tmp_path, *task, "--from", "03221234").code == 0
    assert ringback(tmp_path, "callerid", "clear").code == 0
    assert ringback(tmp_path, *task, "--from", "0999").code == 0
    bad = ringback(tmp_path, "callerid", "set", "sales")
    assert bad.code == 1 and "'sales' is not a number or a prefix" in bad.stderr
