"""The callee's time zone and holidays from the command line (issue 18): ``ringback queue add
/ set --holiday`` keeps a queue's holidays (replacing them, removing them), bad ones are refused
naming them; ``ringback task show`` shows the task's zone and where it came from."""

from __future__ import annotations

from pathlib import Path

from test_cli import ringback

HOURS = "Europe/Paris mon-fri 09:00-18:00"


def test_queue_add_and_set_keep_replace_and_remove_holidays(tmp_path: Path) -> None:
    args = ["queue", "add", "sales", "--hours", HOURS, "--holiday", "12-25=Christmas",
            "--holiday", "2026-05-01@Europe/Paris,Europe/Brussels", "--json"]  # fmt: skip
    (queue,) = ringback(tmp_path, *args).json()
    assert queue["calling_hours"]["holidays"] == [
        {"date": "12-25", "name": "Christmas"},
        {"date": "2026-05-01", "timezones": ["Europe/Brussels", "Europe/Paris"]},
    ]
    # --holiday alone replaces the holidays of the queue's hours, which stay
    args = ["queue", "set", "sales", "--holiday", "01-01=New year", "--json"]
    (queue,) = ringback(tmp_path, *args).json()
    assert queue["calling_hours"]["timezone"] == "Europe/Paris"
    assert queue["calling_hours"]["holidays"] == [{"date": "01-01", "name": "New year"}]
    table = ringback(tmp_path, "queue", "list")
    assert "except 01-01" in table.stdout
    (queue,) = ringback(tmp_path, "queue", "set", "sales", "--no-holidays", "--json").json()
    assert "holidays" not in queue["calling_hours"]
    assert queue["calling_hours"]["windows"]


def test_a_bad_holiday_or_one_without_hours_is_refused_in_one_line(tmp_path: Path) -> None:
    ringback(tmp_path, "queue", "add", "sales")
    ran = ringback(tmp_path, "queue", "set", "sales", "--holiday", "12-25", real=True)
    assert ran.code == 1
    assert ran.stderr.startswith("error: queue 'sales' has no calling hours: give --hours")
    args = ["queue", "set", "sales", "--hours", HOURS, "--holiday", "02-30=Nope"]
    ran = ringback(tmp_path, *args, real=True)
    assert ran.code == 1
    assert "holiday '02-30=Nope': date: '02-30' is not a day of the calendar" in ran.stderr
    assert "Traceback" not in ran.stderr
    (queue,) = ringback(tmp_path, "queue", "list", "--json").json()
    assert queue["calling_hours"] is None  # nothing changed


def test_task_show_tells_the_callees_zone_and_where_it_came_from(tmp_path: Path) -> None:
    ringback(tmp_path, "queue", "add", "sales", "--hours", HOURS)
    add = ["task", "add", "--queue", "sales", "--from", "100", "--audio-file", "hello.wav"]
    assert ringback(tmp_path, *add, "--to", "+12125550123").code == 0
    assert ringback(tmp_path, *add, "--to", "0612345678").code == 0
    first = ringback(tmp_path, "task", "show", "1", "--json").json()
    assert (first["timezone"], first["timezone_source"]) == ("America/New_York", "number")
    second = ringback(tmp_path, "task", "show", "2", "--json").json()
    assert (second["timezone"], second["timezone_source"]) == ("Europe/Paris", "queue")
    shown = ringback(tmp_path, "task", "show", "1")
    assert "callee's time zone America/New_York (number)" in shown.stdout
