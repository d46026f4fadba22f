"""``ringback dnc add|import|list|check|remove``: the local CLI of do-not-call lists; bad input
is one error line and exit 1."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli import ringback


def test_numbers_and_prefixes_are_added_listed_checked_and_removed(tmp_path: Path) -> None:
    added = ringback(tmp_path, "dnc", "add", "0311111111", "+4420*", "--source", "call")
    assert added.code == 0 and "2 entries on list 'dnc'" in added.stderr
    rows = ringback(tmp_path, "dnc", "list", "--json").json()
    assert rows["total"] == 2
    assert [(r["number"], r["prefix"], r["source"]) for r in rows["suppressions"]] == [
        ("0311111111", False, "call"), ("+4420", True, "call"),
    ]  # fmt: skip
    check = ringback(tmp_path, "dnc", "check", "+44 20 7946 0000")
    assert (
        check.code == 1 and "suppressed: on list 'dnc' (source call; prefix +4420)" in check.stdout
    )
    assert ringback(tmp_path, "dnc", "check", "0399").code == 0
    removed = ringback(tmp_path, "dnc", "remove", "+4420*")
    assert removed.code == 0 and "removed 1 entries" in removed.stderr
    table = ringback(tmp_path, "dnc", "list")
    assert "0311111111" in table.stdout and "+4420" not in table.stdout


def test_a_csv_file_is_imported_and_a_bad_line_refuses_the_whole_file(tmp_path: Path) -> None:
    good = tmp_path / "optouts.csv"
    good.write_text("".join(f"03{i:08d}\n" for i in range(2500)) + "0399*,vip\n")
    done = ringback(tmp_path, "dnc", "import", good, "--list", "optouts")
    assert done.code == 0 and "imported 2501 entries" in done.stderr
    listed = ringback(tmp_path, "dnc", "list", "--list", "vip", "--json").json()
    assert [(r["number"], r["source"]) for r in listed["suppressions"]] == [("0399", "optouts.csv")]
    bad = tmp_path / "bad.csv"
    bad.write_text("0311\n12ab\n")
    refused = ringback(tmp_path, "dnc", "import", bad)
    assert refused.code == 1 and "line 2" in refused.stderr and "'12ab'" in refused.stderr
    assert ringback(tmp_path, "dnc", "list", "--json").json()["total"] == 2501
    missing = ringback(tmp_path, "dnc", "import", tmp_path / "nope.csv")
    assert missing.code == 1 and "cannot read" in missing.stderr
    past = ringback(tmp_path, "dnc", "add", "0311", "--expires", "2001-01-01 00:00:00")
    assert past.code == 1 and "must be in the future" in past.stderr


def test_a_task_takes_an_expiry_and_a_queue_a_time_to_live(tmp_path: Path) -> None:
    made = ringback(tmp_path, "queue", "add", "sales", "--ttl", "3600", "--json")
    assert made.code == 0 and made.json()[0]["task_ttl_seconds"] == 3600
    added = ringback(
        tmp_path,
        "task",
        "add",
        "--to",
        "0311",
        "--from",
        "0322",
        "--audio-file",
        "hi.wav",
        "--expires",
        "2099-01-01 00:00:00",
        "--json",
    )
    assert added.code == 0, added.stderr
    [task_id] = added.json()["ids"]
    shown = ringback(tmp_path, "task", "show", str(task_id), "--json")
    assert shown.code == 0 and "2099-01-01 00:00:00" in shown.stdout
    past = ringback(
        tmp_path,
        "task",
        "add",
        "--to",
        "0311",
        "--from",
        "0322",
        "--audio-file",
        "hi.wav",
        "--expires",
        "2001-01-01 00:00:00",
    )
    assert past.code == 1 and "expires_at must be in the future" in past.stderr
    cleared = ringback(tmp_path, "queue", "set", "sales", "--no-ttl", "--json")
    assert cleared.json()[0]["task_ttl_seconds"] is None


def test_a_task_takes_a_priority_at_creation_and_by_update(tmp_path: Path) -> None:
    added = ringback(tmp_path, "task", "add", "--to", "0311", "--from", "0322",
                     "--audio-file", "hi.wav", "--priority", "8", "--json")  # fmt: skip
    assert added.code == 0, added.stderr
    [task_id] = added.json()["ids"]
    assert ringback(tmp_path, "task", "show", str(task_id), "--json").json()["priority"] == 8
    changed = ringback(tmp_path, "task", "priority", str(task_id), "1")
    assert changed.code == 0 and f"task {task_id}: priority 1" in changed.stderr
    assert ringback(tmp_path, "task", "show", str(task_id), "--json").json()["priority"] == 1
    assert ringback(tmp_path, "task", "priority", str(task_id), "12").code != 0


def test_every_dnc_command_and_task_priority_print_json_under_json(tmp_path: Path) -> None:
    added = ringback(tmp_path, "dnc", "add", "0311111111", "--json").json()
    assert added == {"added": 1, "list": "dnc"}
    csv_file = tmp_path / "more.csv"
    csv_file.write_text("number\n0322222222\n")
    imported = ringback(tmp_path, "dnc", "import", str(csv_file), "--json").json()
    assert imported == {"imported": 1, "file": str(csv_file)}
    check = ringback(tmp_path, "dnc", "check", "0311111111", "--json")
    assert check.code == 1 and json.loads(check.stdout)["suppressed"] is True
    assert ringback(tmp_path, "dnc", "check", "0399", "--json").json()["reason"] is None
    assert ringback(tmp_path, "dnc", "remove", "0311111111", "--json").json() == {"removed": 1}
    refused = ringback(tmp_path, "task", "priority", "999", "3", "--json")
    assert refused.code == 1
    assert json.loads(refused.stderr)["error"] == "not_found"


def test_the_host_cli_records_its_changes_in_the_audit_log_as_the_operators_login(
    tmp_path: Path,
) -> None:
    import getpass
    import json
    import sqlite3

    assert ringback(tmp_path, "queue", "add", "audited").code == 0
    assert ringback(tmp_path, "dnc", "add", "0311111111").code == 0
    conn = sqlite3.connect(tmp_path / "rb.db")
    try:
        rows = conn.execute(
            "SELECT channel, credential_id, operator, action, object_type, summary "
            "FROM audit_log ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("cli", None, getpass.getuser(), "created", "queue"),
        ("cli", None, getpass.getuser(), "created", "suppression"),
    ]
    assert json.loads(rows[1][5])["count"] == 1
