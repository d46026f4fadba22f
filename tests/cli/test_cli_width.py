"""No output of ``ringback`` loses a row, a column, a header or an id at any width, and lines
of text (a transcript, a path) are the same whatever the width and wherever the files live.

The widths are set with ``COLUMNS`` for each run, so these tests do not depend on the terminal
they run in; one runs the real program in a subprocess, the rest go through typer's runner.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ringback.cli import app

DOCUMENTS = Path(__file__).parent.parent / "ivr" / "documents"
WIDTHS = ("60", "80", "200")
TASK_HEADERS = ("id", "kind", "to", "status", "result", "attempt", "next run (UTC)", "comment")
QUEUE_HEADERS = (
    "id", "name", "status", "limit", "running", "scheduled", "tasks", "calls/s",
    "calling hours", "last call (UTC)",
)  # fmt: skip
HOURS = "Asia/Tokyo mon-fri 09:00-18:00"


def cli(home: Path, *args: str, columns: str | None) -> str:
    env = {
        "RINGBACK_DATABASE_URL": f"sqlite:///{home / 'rb.db'}",
        "RINGBACK_STORAGE_DIR": str(home / "storage"),
        "COLUMNS": columns,
    }
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def numbers(count: int) -> list[str]:
    return [f"0901234{index:04d}" for index in range(1, count + 1)]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Queue 'outbound-sales-tokyo' (off, with calling hours) holding 12 callback tasks."""
    home = tmp_path_factory.mktemp("width")
    cli(home, "queue", "add", "outbound-sales-tokyo", "--hours", HOURS, columns="200")
    for number in numbers(12):
        cli(home, "task", "add", "--queue", "outbound-sales-tokyo", "--kind", "callback",
            "--a-number", number, "--b-number", "0312345678", columns="200")  # fmt: skip
    return home


def whole_words(text: str) -> set[str]:
    """Every run of letters, digits and ``_.:-/()`` in ``text``: a cut cell is not among them."""
    return set(re.findall(r"[\w.:/()-]+", text))


def assert_nothing_cut(text: str, headers: tuple[str, ...], cells: list[str]) -> None:
    assert "…" not in text
    lines = text.splitlines()
    for header in headers:  # whole, on one line
        assert any(header in line for line in lines), f"header {header!r} missing:\n{text}"
    words = whole_words(text)
    for cell in cells:
        assert cell in words, f"{cell!r} missing or cut:\n{text}"


@pytest.mark.parametrize("columns", WIDTHS)
def test_task_list_shows_every_id_number_and_header_at_any_width(home: Path, columns: str) -> None:
    text = cli(home, "task", "list", columns=columns)
    assert_nothing_cut(
        text, TASK_HEADERS, [str(i) for i in range(1, 13)] + numbers(12) + ["queue_off"]
    )
    assert max(len(line.rstrip()) for line in text.splitlines()) <= int(columns)


@pytest.mark.parametrize("columns", WIDTHS)
def test_queue_list_shows_every_column_and_the_calling_hours_at_any_width(
    home: Path, columns: str
) -> None:
    text = cli(home, "queue", "list", columns=columns)
    hours = text.replace("\n", " ")
    assert_nothing_cut(text, QUEUE_HEADERS, ["outbound-sales-tokyo", "off", "12"])
    assert all(part in whole_words(hours) for part in HOURS.split())
    assert max(len(line.rstrip()) for line in text.splitlines()) <= int(columns)


@pytest.mark.parametrize("columns", WIDTHS)
def test_task_show_and_status_keep_every_header_at_any_width(home: Path, columns: str) -> None:
    shown = cli(home, "task", "show", "12", columns=columns)
    calls = ("attempt", "leg", "to", "outcome", "sip", "start", "answer", "end", "billsec")
    assert_nothing_cut(shown, (*calls, "played", "seq", "event", "at (UTC)", "data"), [])
    assert "task.created" in whole_words(shown)
    status = cli(home, "status", columns=columns)
    assert_nothing_cut(status, ("status", "tasks"), ["scheduled", "12"])


def test_the_real_program_at_80_columns_lists_every_task_id(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGBACK_")}
    done = subprocess.run(
        [sys.executable, "-m", "ringback", "task", "list"],
        env={
            **env,
            "RINGBACK_DATABASE_URL": f"sqlite:///{home / 'rb.db'}",
            "RINGBACK_STORAGE_DIR": str(home / "storage"),
            "COLUMNS": "80",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert_nothing_cut(done.stdout, TASK_HEADERS, [str(i) for i in range(1, 13)] + numbers(12))


def test_an_empty_list_too_narrow_for_its_table_still_names_its_columns(tmp_path: Path) -> None:
    text = cli(tmp_path, "queue", "list", columns="60")
    assert_nothing_cut(text, QUEUE_HEADERS, [])


# --- lines of text: the same at every width, wherever the files are --------------------------

PREFIX = "Simulated inbound call from 09012341234 to 05068680000 running "


def document_at_length(tmp_path: Path, length: int) -> Path:
    """A copy of an IVR document at a path of exactly ``length`` characters."""
    tail = "/ivr.xml"
    pad = length - len(str(tmp_path)) - len(tail) - 1
    assert pad > 0
    folder = tmp_path / ("d" * pad)
    folder.mkdir(exist_ok=True)
    path = folder / "ivr.xml"
    shutil.copy(DOCUMENTS / "valid_switch_expr_cases_default.xml", path)
    assert len(str(path)) == length
    return path


@pytest.mark.parametrize("columns", [None, "60", "80"])
def test_a_transcript_keeps_every_row_whole_however_long_the_documents_path(
    tmp_path: Path, columns: str | None
) -> None:
    width = int(columns or 160)
    # the first line ends at every position around the width, and beyond it
    lengths = [width - len(PREFIX) - k for k in range(0, 22, 3)] + [width + 40]
    for length in [n for n in lengths if n > len(str(tmp_path)) + 10]:
        path = document_at_length(tmp_path, length)
        args = ["ivr", "run", str(path), "--digits", "2", "--var", "X=1"]
        result = CliRunner().invoke(app, args, env={"COLUMNS": columns})
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[0] == f"{PREFIX}{path}, caller presses '2'"
        assert any(line.endswith("GetDigits  try 1: '2'") for line in lines), result.stdout
        assert any(line.endswith("Speak  'Support'") for line in lines), result.stdout
        assert lines[-1] == "Call ended (end of document)."


def test_a_transcript_is_the_same_at_every_width(tmp_path: Path) -> None:
    path = document_at_length(tmp_path, 150)
    args = ["ivr", "run", str(path), "--digits", "2", "--var", "X=1"]
    outputs = {CliRunner().invoke(app, args, env={"COLUMNS": c}).stdout for c in WIDTHS}
    assert len(outputs) == 1, outputs


def test_ivr_check_names_a_long_path_whole_on_its_line(tmp_path: Path) -> None:
    path = document_at_length(tmp_path, 190)
    result = CliRunner().invoke(app, ["ivr", "check", str(path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith(f"{path}: ok (")
