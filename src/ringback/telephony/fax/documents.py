"""Documents in and out of the fax engine.

In: :func:`convert` turns a TIFF (any: multi-page, 1-bit, grey, colour, any resolution), a
PNG/JPEG/GIF/BMP/WebP (anything Pillow reads) or a PDF (rendered with pypdfium2) into fax
pages — 1-bit, 1728 pixels wide (215 mm at 204 dpi), 204×98 dpi ("normal") or 204×196 dpi
("fine"), each page scaled to fit the page's width (and an A4 page's length), grey and colour
dithered — and writes them as one multi-page G4 (T.6) TIFF, the form libspandsp's T.30 engine
sends (it refuses grey pages and pages of a resolution it cannot name). Not G3: Pillow's
``compression="group3"`` TIFFs are misread by spandsp 0.0.6's libtiff ("Fax3Decode1D: Buffer
overflow"), which then sends a truncated page.

Out: :func:`read_fax` reads a received fax TIFF back into page images, :func:`fax_to_pdf`
writes them as a PDF with square pixels (a normal-resolution page is stretched 2× vertically).

A document that cannot be converted raises :class:`FaxDocumentError`, naming the file (its
name only, not the server's path) and why. All of it is blocking CPU and file work: call it
in a thread from the event loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

from PIL import Image, ImageSequence, UnidentifiedImageError

from ringback.telephony.fax.result import FaxDocumentError

Resolution = Literal["normal", "fine"]
FAX_WIDTH = 1728  # pixels across a fax page (T.4 A4 width at R8)
X_DPI = 204
Y_DPI: dict[Resolution, int] = {"normal": 98, "fine": 196}
A4_LENGTH_IN = 297 / 25.4
MAX_PAGES = 100
PDF_RENDER_DPI = 204
_PDF_MAGIC = b"%PDF-"


def page_length_limit(resolution: Resolution) -> int:
    """Rows of an A4 page at ``resolution``: longer pages are scaled down to fit."""
    return math.ceil(A4_LENGTH_IN * Y_DPI[resolution])


def fax_page(image: Image.Image, resolution: Resolution = "fine") -> Image.Image:
    """One image as a fax page: mode "1", 1728 wide, rows at ``resolution``'s vertical dpi.

    The image's own dpi (when it has a plausible one) gives its aspect ratio; it is scaled to
    the page's width, or less when it would be longer than an A4 page, and centred."""
    y_dpi = Y_DPI[resolution]
    src_x, src_y = _dpi(image)
    width_in, length_in = image.width / src_x, image.height / src_y
    scale = min(FAX_WIDTH / (width_in * X_DPI), page_length_limit(resolution) / (length_in * y_dpi))
    cols = max(1, min(FAX_WIDTH, round(width_in * X_DPI * scale)))
    rows = max(1, round(length_in * y_dpi * scale))
    bilevel = image.mode == "1"
    grey = _flatten(image)
    if (cols, rows) != grey.size:
        grey = grey.resize((cols, rows), Image.Resampling.LANCZOS)
    if bilevel:
        page = grey.point(lambda v: 255 if v >= 128 else 0).convert("1", dither=Image.Dither.NONE)
    else:
        page = grey.convert("1", dither=Image.Dither.FLOYDSTEINBERG)
    if cols < FAX_WIDTH:
        canvas = Image.new("1", (FAX_WIDTH, rows), 1)
        canvas.paste(page, ((FAX_WIDTH - cols) // 2, 0))
        page = canvas
    page.info["dpi"] = (X_DPI, y_dpi)
    return page


def _dpi(image: Image.Image) -> tuple[float, float]:
    dpi = image.info.get("dpi")
    try:
        x, y = float(dpi[0]), float(dpi[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return 1.0, 1.0  # unknown: square pixels (only the ratio matters)
    if not (10 <= x <= 10000 and 10 <= y <= 10000):
        return 1.0, 1.0
    return x, y


def _flatten(image: Image.Image) -> Image.Image:
    """Greyscale ("L"), transparency composited onto white paper."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        paper.alpha_composite(rgba)
        return paper.convert("L")
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        return image.convert("F").point(lambda v: v / 256).convert("L")
    return image.convert("L")


def _pdf_pages(path: Path) -> Iterator[Image.Image]:
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    try:
        pdf = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        raise FaxDocumentError(path, f"not a readable PDF ({exc})") from None
    try:
        if len(pdf) == 0:
            raise FaxDocumentError(path, "the PDF has no pages")
        if len(pdf) > MAX_PAGES:
            raise FaxDocumentError(path, f"{len(pdf)} pages: at most {MAX_PAGES}")
        for index in range(len(pdf)):
            page = pdf[index]
            try:
                bitmap = page.render(scale=PDF_RENDER_DPI / 72, grayscale=True)
                image = bitmap.to_pil()
            except pdfium.PdfiumError as exc:
                raise FaxDocumentError(
                    path, f"page {index + 1} cannot be rendered ({exc})"
                ) from None
            finally:
                page.close()
            image.info["dpi"] = (PDF_RENDER_DPI, PDF_RENDER_DPI)
            yield image
    finally:
        pdf.close()


def _image_pages(path: Path) -> Iterator[Image.Image]:
    try:
        with Image.open(path) as image:
            count = getattr(image, "n_frames", 1)
            if count > MAX_PAGES:
                raise FaxDocumentError(path, f"{count} pages: at most {MAX_PAGES}")
            for frame in ImageSequence.Iterator(image):
                frame.load()
                page = frame.copy()
                page.info.setdefault("dpi", image.info.get("dpi"))
                yield page
    except UnidentifiedImageError:
        raise FaxDocumentError(path, "not a TIFF, PDF or image format that can be read") from None
    except Image.DecompressionBombError as exc:
        raise FaxDocumentError(path, f"the image is too large ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, FaxDocumentError):
            raise
        raise FaxDocumentError(path, f"the image cannot be read ({exc})") from None


def document_pages(source: Path, resolution: Resolution = "fine") -> list[Image.Image]:
    """Every page of the document at ``source`` as a fax page (see :func:`fax_page`)."""
    try:
        with source.open("rb") as f:
            magic = f.read(len(_PDF_MAGIC))
    except OSError as exc:
        raise FaxDocumentError(source, exc.strerror or str(exc)) from None
    pages = _pdf_pages(source) if magic == _PDF_MAGIC else _image_pages(source)
    out = [fax_page(page, resolution) for page in pages]
    if not out:
        raise FaxDocumentError(source, "the document has no pages")
    return out


def write_fax_tiff(pages: list[Image.Image], dest: Path) -> None:
    """Write fax pages (from :func:`fax_page`) as one multi-page G4 TIFF."""
    first, rest = pages[0], pages[1:]
    first.save(
        dest, format="TIFF", save_all=True, append_images=rest, compression="group4",
        dpi=first.info["dpi"],
    )  # fmt: skip


def convert(
    source: Path,
    dest: Path,
    *,
    resolution: Resolution = "fine",
) -> int:
    """Convert the document at ``source`` into a fax TIFF at ``dest``; the page count."""
    pages = document_pages(source, resolution)
    write_fax_tiff(pages, dest)
    return len(pages)


def read_fax(path: Path) -> list[Image.Image]:
    """The pages of a fax TIFF (mode "1", their ``info["dpi"]`` kept)."""
    pages = list(_image_pages(path))
    for page in pages:
        if page.mode != "1":
            raise FaxDocumentError(path, f"a page is {page.mode!r}, not a 1-bit fax page")
    return pages


def fax_to_pdf(tiff: Path, pdf: Path | IO[bytes]) -> int:
    """Write the fax at ``tiff`` as a PDF to ``pdf`` (a path or a binary file; pixels made
    square); the page count."""
    pages = []
    for page in read_fax(tiff):
        x_dpi, y_dpi = _dpi(page)
        if (x_dpi, y_dpi) == (1.0, 1.0):
            x_dpi, y_dpi = X_DPI, Y_DPI["fine"]
        rows = round(page.height * x_dpi / y_dpi)
        square = page.convert("L").resize((page.width, rows), Image.Resampling.BOX)
        pages.append(square.convert("1", dither=Image.Dither.NONE))
    pages[0].save(pdf, format="PDF", save_all=True, append_images=pages[1:], resolution=x_dpi)
    return len(pages)


__all__ = ["FaxDocumentError", "convert", "fax_to_pdf", "read_fax"]
