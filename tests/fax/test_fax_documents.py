"""Documents into fax pages (TIFF of any kind, PNG/JPEG, PDF) and received faxes back out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from support_fax import bitmaps, drawn_page

from ringback.telephony.fax import documents
from ringback.telephony.fax.documents import FaxDocumentError, Resolution
from ringback.telephony.fax.endpoint import FaxEndpoint, exchange

RESOLUTIONS: tuple[Resolution, ...] = ("normal", "fine")


def assert_fax_pages(path: Path, resolution: Resolution, count: int) -> list[Image.Image]:
    pages = documents.read_fax(path)
    assert len(pages) == count
    with Image.open(path) as image:
        assert image.info["compression"] == "group4"
    for page in pages:
        assert page.mode == "1"
        assert page.width == documents.FAX_WIDTH
        assert 1 <= page.height <= documents.page_length_limit(resolution)
        x_dpi, y_dpi = page.info["dpi"]
        assert (round(x_dpi), round(y_dpi)) == (204, documents.Y_DPI[resolution])
    return pages


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_a_grey_tiff_becomes_bilevel_fax_pages(tmp_path: Path, resolution: Resolution) -> None:
    source = tmp_path / "grey.tif"
    grey = Image.new("L", (850, 1100), 255)  # letter at 100 dpi
    ImageDraw.Draw(grey).rectangle((100, 100, 400, 300), fill=90)
    grey.save(source, dpi=(100, 100))
    out = tmp_path / "fax.tif"
    assert documents.convert(source, out, resolution=resolution) == 1
    [page] = assert_fax_pages(out, resolution, 1)
    # 11 in long at the page's vertical resolution, scaled to 1728/1734 of the width
    expected_rows = round(1100 / 100 * documents.Y_DPI[resolution] * 1728 / 1734)
    assert abs(page.height - expected_rows) <= 1
    pixels = np.array(page)
    assert pixels[:50].all()  # the white margin stays white
    dithered = pixels[int(page.height * 0.15) : int(page.height * 0.25), 250:700]
    assert 0.2 < dithered.mean() < 0.6  # grey 90 dithered to about a third white


def test_a_multipage_colour_tiff_keeps_its_pages(tmp_path: Path) -> None:
    source = tmp_path / "colour.tif"
    pages = [Image.new("RGB", (600, 800), colour) for colour in ("white", "red", "navy")]
    pages[0].save(source, save_all=True, append_images=pages[1:], dpi=(72, 72))
    out = tmp_path / "fax.tif"
    assert documents.convert(source, out, resolution="normal") == 3
    converted = assert_fax_pages(out, "normal", 3)
    assert np.array(converted[0]).all()  # white stays white
    assert np.array(converted[2]).mean() < 0.1  # navy is nearly black


def test_a_png_with_transparency_is_put_on_white_paper(tmp_path: Path) -> None:
    source = tmp_path / "logo.png"
    logo = Image.new("RGBA", (400, 200), (0, 0, 0, 0))
    ImageDraw.Draw(logo).rectangle((0, 0, 99, 199), fill=(0, 0, 0, 255))
    logo.save(source)
    out = tmp_path / "fax.tif"
    assert documents.convert(source, out, resolution="fine") == 1
    [page] = assert_fax_pages(out, "fine", 1)
    pixels = np.array(page)
    assert not pixels[:, :400].any()  # the opaque quarter is black
    assert pixels[:, 500:].all()  # the transparent rest is paper


def test_a_jpeg_is_converted(tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    Image.linear_gradient("L").resize((320, 240)).convert("RGB").save(source, quality=80)
    out = tmp_path / "fax.tif"
    assert documents.convert(source, out, resolution="normal") == 1
    [page] = assert_fax_pages(out, "normal", 1)
    # square pixels in, 204×98 out: 4:3 at the page's width
    assert abs(page.height - round(1728 * 240 / 320 * 98 / 204)) <= 1


def make_pdf(path: Path, pages: int) -> None:
    drawn = []
    for index in range(pages):
        page = Image.new("L", (850, 1100), 255)
        ImageDraw.Draw(page).rectangle((100, 100 + 50 * index, 750, 200 + 50 * index), fill=0)
        drawn.append(page)
    drawn[0].save(path, save_all=True, append_images=drawn[1:], resolution=100)


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_pdf_pages_are_rendered(tmp_path: Path, resolution: Resolution) -> None:
    source = tmp_path / "letter.pdf"
    make_pdf(source, 2)
    out = tmp_path / "fax.tif"
    assert documents.convert(source, out, resolution=resolution) == 2
    pages = assert_fax_pages(out, resolution, 2)
    for index, page in enumerate(pages):
        pixels = np.array(page)
        scale = documents.Y_DPI[resolution] / 100 * 1728 / 1734
        row = round((150 + 50 * index) * scale)
        assert not pixels[row, 400:1300].any()  # inside the black bar
        assert pixels[round(50 * scale)].all()  # above it, white


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"II*\x00not really a tiff", "not a TIFF, PDF or image format that can be read"),
        (b"", "not a TIFF, PDF or image format that can be read"),
        (b"hello, world\n", "not a TIFF, PDF or image format that can be read"),
        (b"%PDF-1.4 truncated", "not a readable PDF"),
    ],
    ids=["bad-tiff", "empty", "text", "bad-pdf"],
)
def test_a_bad_document_is_refused_naming_the_file(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    source = tmp_path / "bad.doc"
    source.write_bytes(content)
    with pytest.raises(FaxDocumentError, match=r"^cannot fax bad\.doc: ") as caught:
        documents.convert(source, tmp_path / "fax.tif")
    assert caught.value.reason.startswith(reason)
    assert str(tmp_path) not in str(caught.value)  # the name, never the server's path
    assert not (tmp_path / "fax.tif").exists()


def test_a_missing_document_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FaxDocumentError, match=r"cannot fax absent\.pdf: No such file"):
        documents.convert(tmp_path / "absent.pdf", tmp_path / "fax.tif")


def test_a_grey_tiff_is_not_a_received_fax(tmp_path: Path) -> None:
    source = tmp_path / "grey.tif"
    Image.new("L", (100, 100), 128).save(source)
    with pytest.raises(FaxDocumentError, match="not a 1-bit fax page"):
        documents.read_fax(source)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    width=st.integers(1, 3000),
    height=st.integers(1, 3000),
    mode=st.sampled_from(["1", "L", "RGB", "RGBA", "P", "CMYK", "I;16", "LA"]),
    dpi=st.one_of(st.none(), st.tuples(st.integers(1, 1200), st.integers(1, 1200))),
    resolution=st.sampled_from(RESOLUTIONS),
)
def test_any_image_becomes_a_fax_page(
    width: int,
    height: int,
    mode: str,
    dpi: tuple[int, int] | None,
    resolution: Resolution,
) -> None:
    image = Image.new(mode, (width, height))
    if dpi is not None:
        image.info["dpi"] = dpi
    page = documents.fax_page(image, resolution)
    assert page.mode == "1"
    assert page.width == documents.FAX_WIDTH
    assert 1 <= page.height <= documents.page_length_limit(resolution)
    assert page.info["dpi"] == (204, documents.Y_DPI[resolution])


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_a_converted_document_is_faxed_bit_for_bit(tmp_path: Path, resolution: Resolution) -> None:
    source = tmp_path / "drawn.png"
    drawn_page(0, rows=1200, width=1400).save(source)
    out = tmp_path / "fax.tif"
    documents.convert(source, out, resolution=resolution)
    received = tmp_path / "received.tif"
    with FaxEndpoint(send=out) as sender, FaxEndpoint(receive=received) as receiver:
        sent, got = exchange(sender, receiver, "alaw", 300)
    assert (sent.code, got.code, got.pages) == (0, 0, 1)
    [want], [have] = bitmaps(out), bitmaps(received)
    assert np.array_equal(want, have)


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_a_received_fax_becomes_a_pdf_with_square_pixels(
    tmp_path: Path, resolution: Resolution
) -> None:
    fax = tmp_path / "fax.tif"
    make_pdf(tmp_path / "letter.pdf", 2)
    documents.convert(tmp_path / "letter.pdf", fax, resolution=resolution)
    pdf_path = tmp_path / "fax.pdf"
    assert documents.fax_to_pdf(fax, pdf_path) == 2
    pdf = pdfium.PdfDocument(pdf_path)
    try:
        assert len(pdf) == 2
        width_pt, height_pt = pdf[0].get_size()
    finally:
        pdf.close()
    # a letter page (8.5 × 11 in) stays a letter page, within the rounding of the rows
    assert abs(width_pt / 72 - 1728 / 204) < 0.01
    assert abs(height_pt / width_pt - 11 / 8.5) < 0.02
