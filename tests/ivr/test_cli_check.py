"""``ringback ivr check``: exit 0 when every document is valid, 1 with every error and line."""

from __future__ import annotations

from pathlib import Path

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
