"""``ringback remote task import`` against a real ``ringback serve`` (SQLite): CSV with a bad
row, the errors file and its re-import, idempotent re-runs, stdin JSONL, the server's cap."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remote_support import Operator, logged_in, remote_server, unique

pytestmark = pytest.mark.slow  # a server of the module's own

HEADER = "name,a_number,b_number,try_count,try_again_pause,caller_id_name,var.city,_note\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with remote_server(tmp_path_factory, "remote-import") as live:
        yield live


@pytest.fixture
def rb(server: Any, tmp_path: Path) -> Operator:
    [tenant] = server.make_tenants(unique("importer")).values()
    return logged_in(server, tenant, tmp_path / "config")


def _queue(rb: Operator) -> str:
    name = unique("campaign")
    rb("remote", "queue", "add", name, "--json").json()
    return name


def _total(rb: Operator, queue: str) -> int:
    total: int = rb("remote", "task", "list", "-q", queue, "--limit", "1", "--json").json()["total"]
    return total


def test_csv_with_a_bad_row_names_it_and_the_errors_file_holds_just_it(
    rb: Operator, tmp_path: Path
) -> None:
    queue = _queue(rb)
    campaign = tmp_path / "campaign.csv"
    campaign.write_text(
        HEADER
        + "lead-1,15550001001,15550002001,2,30,ACME,Paris,first\n"
        + "lead-2,not-a-number,15550002002,2,30,ACME,Lyon,\n"
        + "lead-3,15550001003,15550002003,,,,,\n"
    )
    errors = tmp_path / "refused.csv"
    ran = rb("remote", "task", "import", str(campaign), "-q", queue, "--errors", str(errors))
    assert ran.code == 1, ran.stderr
    assert "added 2 task(s), refused 1 row(s) of 3" in ran.stdout
    assert "line 3: a_number:" in ran.stdout
    rows = list(csv.reader(errors.open()))
    assert rows[0] == [*HEADER.strip().split(","), "_error"]
    assert len(rows) == 2 and rows[1][0] == "lead-2" and rows[1][-1].startswith("line 3: a_number")
    listed = rb("remote", "task", "list", "-q", queue, "--name", "lead-1", "--json").json()
    [lead] = listed["tasks"]
    assert lead["try_count"] == 2 and lead["variables"] == {"city": "Paris"}
    assert lead["callback_params"]["caller_id_name"] == "ACME"

    fixed = errors.read_text().replace("not-a-number", "15550001002")
    errors.write_text(fixed)
    again = rb("remote", "task", "import", str(errors), "-q", queue, "--json").json()
    assert again["added"] == 1 and again["refused"] == []
    assert _total(rb, queue) == 3


def test_running_the_same_file_again_adds_nothing(rb: Operator, tmp_path: Path) -> None:
    queue = _queue(rb)
    campaign = tmp_path / "big.csv"
    lines = [f"c{i},1555{i:07d},1666{i:07d},1,60,,,\n" for i in range(2500)]
    campaign.write_text(HEADER + "".join(lines))
    first = rb("remote", "task", "import", str(campaign), "-q", queue, "--batch-size", "1000",
               "--json").json()  # fmt: skip
    assert first["added"] == 2500 and first["rows"] == 2500
    rb("remote", "task", "import", str(campaign), "-q", queue, "--batch-size", "1000",
       "--json").json()  # fmt: skip
    assert _total(rb, queue) == 2500


def test_jsonl_from_stdin_is_imported(rb: Operator) -> None:
    queue = _queue(rb)
    tasks = [{"name": f"s{i}", "a_number": f"1555000{i:04d}", "b_number": "15550002002",
              "variables": {"n": str(i)}} for i in range(5)]  # fmt: skip
    tasks.append({"name": "bad", "a_number": "15550001001"})  # no b_number
    stdin = "".join(json.dumps(task) + "\n" for task in tasks)
    ran = rb("remote", "task", "import", "-", "-q", queue, "--json", input=stdin)
    assert ran.code == 1, ran.stderr
    summary = json.loads(ran.stdout)
    assert summary["added"] == 5
    assert [r["where"] for r in summary["refused"]] == ["line 6"]
    assert "b_number" in summary["refused"][0]["reason"]
    assert _total(rb, queue) == 5


def test_an_unknown_csv_column_is_refused_by_name_before_sending(
    rb: Operator, tmp_path: Path
) -> None:
    queue = _queue(rb)
    campaign = tmp_path / "odd.csv"
    campaign.write_text("a_number,b_number,colour\n15550001001,15550002002,red\n")
    body = rb("remote", "task", "import", str(campaign), "-q", queue, "--json").error(1)
    assert "'colour'" in body["message"] and "var.NAME" in body["message"]
    assert _total(rb, queue) == 0


def test_a_batch_size_over_the_servers_cap_is_refused_stating_the_cap(
    rb: Operator, tmp_path: Path
) -> None:
    campaign = tmp_path / "c.csv"
    campaign.write_text("a_number,b_number\n15550001001,15550002002\n")
    body = rb("remote", "task", "import", str(campaign), "-q", _queue(rb), "--batch-size",
              "20000", "--json").error(1)  # fmt: skip
    assert "at most 10,000 tasks per request" in body["message"]
