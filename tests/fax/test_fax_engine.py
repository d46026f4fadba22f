"""The fax engine against itself: two libspandsp endpoints through G.711, pages compared bit
for bit with the document sent; a bad document; loss. libspandsp is required (CI installs
``libspandsp2``): without it these tests fail, they do not skip."""

from __future__ import annotations

import ctypes
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support_fax import bitmaps, fax_document

from ringback.telephony.fax import spandsp
from ringback.telephony.fax.endpoint import FaxEndpoint, exchange
from ringback.telephony.fax.g711 import Law
from ringback.telephony.fax.result import FaxResult


def run(
    tmp_path: Path,
    document: Path,
    *,
    law: Law = "ulaw",
    ecm: bool = True,
    header: str = "",
    lose: Callable[[int, int], bool] | None = None,
    max_seconds: float = 300.0,
) -> tuple[FaxResult, FaxResult, Path]:
    received = tmp_path / "received.tif"
    with (
        FaxEndpoint(send=document, ecm=ecm, local_ident="+15550001", header=header) as sender,
        FaxEndpoint(receive=received, ecm=ecm, local_ident="+15550002") as receiver,
    ):
        sent, got = exchange(sender, receiver, law, max_seconds, lose=lose)
    return sent, got, received


@pytest.mark.parametrize("ecm", [True, False], ids=["ecm", "no-ecm"])
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_two_pages_go_through_bit_for_bit(tmp_path: Path, law: Law, ecm: bool) -> None:
    document = fax_document(tmp_path / "out.tif", pages=2)
    sent, got, received = run(tmp_path, document, law=law, ecm=ecm)
    assert (sent.code, sent.text, got.code, got.text) == (0, "OK", 0, "OK")
    assert (sent.pages, got.pages) == (2, 2)
    assert sent.sending and not got.sending
    assert (sent.operation, got.operation) == ("transmission", "reception")
    assert sent.bit_rate == got.bit_rate == 14400  # V.17
    assert sent.ecm is ecm and got.ecm is ecm
    assert (sent.local_ident, sent.remote_ident) == ("+15550001", "+15550002")
    assert (got.local_ident, got.remote_ident) == ("+15550002", "+15550001")
    assert 10 < got.audio_seconds < 120
    expected, actual = bitmaps(document), bitmaps(received)
    assert len(actual) == 2
    for want, have in zip(expected, actual, strict=True):
        assert want.shape == have.shape
        assert np.array_equal(want, have)


def test_fine_resolution_goes_through(tmp_path: Path) -> None:
    document = fax_document(tmp_path / "out.tif", pages=1, resolution="fine")
    sent, got, received = run(tmp_path, document)
    assert (sent.code, got.code, got.pages) == (0, 0, 1)
    with Image.open(received) as image:
        assert round(image.info["dpi"][1]) == 196
    assert np.array_equal(bitmaps(document)[0], bitmaps(received)[0])


def test_the_header_line_is_added_above_each_page(tmp_path: Path) -> None:
    document = fax_document(tmp_path / "out.tif", pages=1)
    sent, got, received = run(tmp_path, document, header="ringback test")
    assert (sent.code, got.code, sent.header) == (0, 0, "ringback test")
    [want], [have] = bitmaps(document), bitmaps(received)
    extra = have.shape[0] - want.shape[0]
    assert extra > 0  # spandsp 0.0.6 puts the header in rows of its own
    assert np.array_equal(have[extra:], want)
    assert not have[:extra].all()  # the header's text is black on white


def test_a_grey_tiff_fails_with_a_code_not_an_exception(tmp_path: Path) -> None:
    grey = tmp_path / "grey.tif"
    Image.linear_gradient("L").resize((1728, 400)).save(grey, dpi=(204, 98))
    sent, got, _ = run(tmp_path, grey, max_seconds=60)
    assert sent.code != 0 and got.code != 0
    assert sent.text and sent.text != "OK" and got.text != "OK"
    assert sent.pages == 0 and got.pages == 0
    assert sent.audio_seconds < 30


def test_a_missing_document_fails_with_a_code(tmp_path: Path) -> None:
    sent, got, _ = run(tmp_path, tmp_path / "absent.tif", max_seconds=60)
    assert sent.code == 41  # T30_ERR_FILEERROR
    assert sent.text == "TIFF/F file cannot be opened"
    assert got.code != 0


def test_heavy_loss_is_a_failure_code_and_text(tmp_path: Path) -> None:
    document = fax_document(tmp_path / "out.tif", pages=2)
    rng = random.Random(14)
    lost = [0, 0]

    def lose(direction: int, _index: int) -> bool:
        if rng.random() < 0.15:
            lost[direction] += 1
            return True
        return False

    sent, got, _ = run(tmp_path, document, ecm=False, lose=lose, max_seconds=240)
    assert lost[0] > 0 and lost[1] > 0
    assert isinstance(sent.code, int) and isinstance(got.code, int)
    assert (sent.code, got.code) != (0, 0)
    failed = sent if sent.code else got
    assert failed.text and failed.text != "OK"


def test_a_dead_line_ends_as_dropped_or_timed_out(tmp_path: Path) -> None:
    document = fax_document(tmp_path / "out.tif", pages=1)
    sent, got, _ = run(tmp_path, document, lose=lambda _d, index: index > 150, max_seconds=120)
    assert sent.code != 0 and got.code != 0
    assert sent.text != "OK" and got.text != "OK"


def test_an_endpoint_sends_or_receives(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="either sends"):
        FaxEndpoint(send=tmp_path / "a.tif", receive=tmp_path / "b.tif")
    with pytest.raises(ValueError, match="either sends"):
        FaxEndpoint()


def test_a_closed_endpoint_keeps_its_result(tmp_path: Path) -> None:
    endpoint = FaxEndpoint(receive=tmp_path / "in.tif")
    endpoint.close()
    endpoint.close()
    with pytest.raises(RuntimeError, match="closed"):
        endpoint.tx(160)
    result = endpoint.hang_up()
    assert (result.code, result.text) == (49, "The call dropped prematurely")


def test_missing_library_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_library(name: str) -> ctypes.CDLL:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(spandsp, "_loaded", None)
    monkeypatch.setattr(ctypes, "CDLL", no_library)
    with pytest.raises(spandsp.FaxUnavailable, match=r"apt-get install libspandsp2"):
        spandsp.load()
    assert not spandsp.available()


def test_the_library_is_loaded_by_soname() -> None:
    sd = spandsp.load()
    assert sd is spandsp.load()
    assert sd.t30_completion_code_to_str(0) == "OK"
    assert sd.t30_completion_code_to_str(11).startswith("Far end cannot receive at the resolution")
