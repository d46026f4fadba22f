"""``ringback ivr check``: exit 0 when every document is valid, 1 with every error and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ringback.cli import app

DOCUMENTS = Path(__file__).parent / "documents"


def test_check_exits_0_when_all_documents_are_valid() -> None:
    files = [str(path) for path in sorted(DOCUMENTS.glob("valid_*.xml"))]
    result = CliRunner().invoke(app, ["ivr", "check", *files])
    assert result.exit_code == 0, result.output
    assert f"{files[0]}: ok (" in result.stdout


def test_check_exits_1_printing_every_error_with_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "good.xml"
    good.write_text("<IVR><Speak>hi</Speak></IVR>")
    bad1 = tmp_path / "bad1.xml"
    bad1.write_text("<IVR>\n\n<Speak studio='x'>hi</Speak></IVR>")
    bad2 = tmp_path / "bad2.xml"
    bad2.write_text("<IVR>\n<Play loop='9'>a.wav</Play></IVR>")
    missing = tmp_path / "missing.xml"
    result = CliRunner().invoke(
        app, ["ivr", "check", str(good), str(bad1), str(bad2), str(missing)]
    )
    assert result.exit_code == 1
    assert f"{bad1}:3: Element Speak does not support attribute studio" in result.stderr
    assert f"{bad2}:2: Attribute loop of element Play must be an integer from 1 to 5" in (
        result.stderr
    )
    assert f"{missing}: cannot read the file" in result.stderr
    assert "3 of 4 document(s) invalid" in result.stderr
    assert f"{good}: ok (2 elements)" in result.stdout


def test_run_prints_a_transcript_of_the_simulated_call() -> None:
    path = DOCUMENTS / "valid_switch_expr_cases_default.xml"
    result = CliRunner().invoke(app, ["ivr", "run", str(path), "--digits", "2", "--var", "X=1"])
    assert result.exit_code == 0, result.output
    assert "caller presses '2'" in result.stdout
    assert "GetDigits  try 1: '2'" in result.stdout
    assert "Speak  'Support'" in result.stdout
    assert "Call ended (end of document)." in result.stdout


def test_run_exits_1_when_the_ivr_fails(tmp_path: Path) -> None:
    path = tmp_path / "hangup.xml"
    path.write_text("<IVR><Speak>hold on</Speak>\n<Transfer>sales</Transfer></IVR>")
    result = CliRunner().invoke(app, ["ivr", "run", str(path)])
    assert result.exit_code == 1
    assert "error: line 2: Cannot execute Transfer. Transferring to 'sales' is not supported" in (
        result.stderr
    )


def test_run_var_calling_number_overrides_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "who.xml"
    path.write_text("<IVR><Speak>{{CallingNumber}} {{From}} to {{CalledNumber}}</Speak></IVR>")
    result = CliRunner().invoke(app, ["ivr", "run", str(path), "--var", "CallingNumber=0311112222"])
    assert result.exit_code == 0, result.stdout
    assert "'0311112222 0311112222 to 05068680000'" in result.stdout
    assert "from 0311112222 to 05068680000" in result.stdout


def test_run_with_a_client_queues_the_seeds_callback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RINGBACK_DATABASE_URL", f"sqlite:///{tmp_path / 'rb.db'}")
    monkeypatch.setenv("RINGBACK_STORAGE_DIR", str(tmp_path / "storage"))
    path = DOCUMENTS / "valid_seed_addjob_callback.xml"
    result = CliRunner().invoke(app, ["ivr", "run", str(path), "--client", "acme"])
    assert result.exit_code == 0, result.output
    assert "AddJob  task 1 added" in result.stdout
    assert "I am calling you back in a few seconds." in result.stdout
    listed = CliRunner().invoke(app, ["task", "list", "--client", "acme", "--json"])
    assert listed.exit_code == 0, listed.output
    assert '"09012341234"' in listed.stdout


def test_run_of_the_review_loop_document_ends_with_the_value_cap_error_and_bounded_output(
    tmp_path: Path,
) -> None:
    path = tmp_path / "loop.xml"
    path.write_text(
        "<IVR>\n<Section name='loop'>\n<Set var='a' expr=\"'x' * 99999\"/>\n"
        "<Set var='b' expr='a'/>\n<GoTo>loop</GoTo>\n</Section>\n</IVR>"
    )
    result = CliRunner().invoke(app, ["ivr", "run", str(path)])
    assert result.exit_code == 1
    assert "error: line 3: Cannot execute Set. value too large" in result.stderr
    assert len(result.output) < 100_000


@pytest.mark.slow  # a thousand jumps copying a 60,000-character value: seconds
def test_run_of_a_loop_under_the_value_cap_ends_at_the_jump_bound_with_bounded_output(
    tmp_path: Path,
) -> None:
    path = tmp_path / "grow.xml"
    path.write_text(
        "<IVR>\n<Set var='a' expr=\"'x' * 60000\"/>\n<Section name='loop'>\n"
        "<Set var='b' expr='a'/>\n<GoTo>loop</GoTo>\n</Section>\n</IVR>"
    )
    result = CliRunner().invoke(app, ["ivr", "run", str(path)])
    assert result.exit_code == 1
    assert "error: line 5: The IVR jumped more than 1000 times" in result.stderr
    assert "trace full" in result.stdout
    assert len(result.output) < 2_000_000


def test_check_with_a_client_reports_a_sendfax_document_that_cannot_be_faxed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RINGBACK_DATABASE_URL", f"sqlite:///{tmp_path / 'rb.db'}")
    monkeypatch.setenv("RINGBACK_STORAGE_DIR", str(tmp_path / "storage"))
    made = CliRunner().invoke(app, ["client", "create", "acme", "--json"])
    assert made.exit_code == 0, made.output
    folder = tmp_path / "storage" / str(json.loads(made.stdout)["id"])
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("not a document")
    bad, missing, late = tmp_path / "bad.xml", tmp_path / "missing.xml", tmp_path / "late.xml"
    bad.write_text("<IVR><SendFax>notes.txt</SendFax></IVR>")
    missing.write_text("<IVR>\n<SendFax>gone.pdf</SendFax></IVR>")
    late.write_text("<IVR><SendFax>{{CalledNumber}}.pdf</SendFax></IVR>")  # known at run time
    result = CliRunner().invoke(
        app, ["ivr", "check", str(bad), str(missing), str(late), "--client", "acme"]
    )
    assert result.exit_code == 1, result.output
    assert "line 1: SendFax cannot fax notes.txt: " in result.output
    assert "line 2: SendFax cannot fax gone.pdf: it doesn't exist in the client's storage" in (
        result.output.replace("\n", " ")
    )
    assert "late.xml: ok" in result.output
    assert "2 of 3 document(s) invalid" in result.output


def test_check_json_reports_every_document_and_exits_1_when_one_is_invalid(
    tmp_path: Path,
) -> None:
    good = tmp_path / "good.xml"
    good.write_text("<IVR><Speak>hi</Speak></IVR>")
    bad = tmp_path / "bad.xml"
    bad.write_text("<IVR>\n<Play loop='9'>a.wav</Play></IVR>")
    result = CliRunner().invoke(app, ["ivr", "check", "--json", str(good), str(bad)])
    assert result.exit_code == 1
    shown = json.loads(result.stdout)
    assert shown["invalid"] == 1
    assert shown["documents"][0] == {"file": str(good), "ok": True, "elements": 2}
    assert shown["documents"][1]["ok"] is False
    assert shown["documents"][1]["line"] == 2
    assert "Attribute loop of element Play" in shown["documents"][1]["error"]


def test_run_json_prints_the_transcript_as_data() -> None:
    path = DOCUMENTS / "valid_switch_expr_cases_default.xml"
    result = CliRunner().invoke(app, ["ivr", "run", "--json", str(path), "--digits", "2"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["ok"] is True
    assert shown["keys_pressed"] == "2"
    assert any(
        entry["element"] == "Speak" and "Support" in entry["detail"] for entry in shown["trace"]
    )
    assert shown["hung_up_by"] == "end of document"


def test_run_json_reports_a_parse_error_as_one_json_object_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_text("<IVR>\n<Nope/></IVR>")
    result = CliRunner().invoke(app, ["ivr", "run", "--json", str(path)])
    assert result.exit_code == 1
    shown = json.loads(result.stderr)
    assert shown["error"] == "refused"
    assert shown["message"].startswith(f"{path}:2: ")
    # the next command without --json prints plain text again
    plain = CliRunner().invoke(app, ["ivr", "run", str(path)])
    assert plain.stderr.startswith("error: ")
