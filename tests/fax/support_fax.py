"""Small synthetic fax documents for the fax tests (drawn with Pillow, nothing downloaded).

Pages are sparse (a frame, a few boxes and words): a dense or dithered page takes minutes of
fax audio, which the engine computes but the tests do not need."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from ringback.telephony.fax import documents


def drawn_page(index: int, rows: int = 1000, width: int = documents.FAX_WIDTH) -> Image.Image:
    """A 1-bit page with a frame, boxes and a line of text that differ by ``index``."""
    page = Image.new("1", (width, rows), 1)
    draw = ImageDraw.Draw(page)
    draw.rectangle((40, 40, width - 41, rows - 41), outline=0, width=2)
    draw.text((100, 80 + 10 * index), f"ringback fax test, page {index + 1}", fill=0)
    for box in range(3):
        left = 200 + 300 * box + 17 * index
        draw.rectangle((left, 300, left + 150, 300 + 40 * (box + 1)), outline=0, width=3)
    return page


def fax_document(path: Path, pages: int = 2, resolution: documents.Resolution = "normal") -> Path:
    """A ready fax TIFF of ``pages`` drawn pages at ``resolution``."""
    drawn = []
    for index in range(pages):
        page = drawn_page(index)
        page.info["dpi"] = (documents.X_DPI, documents.Y_DPI[resolution])
        drawn.append(page)
    documents.write_fax_tiff(drawn, path)
    return path


def bitmaps(path: Path) -> list[npt.NDArray[np.bool_]]:
    """The pages of a fax TIFF as boolean arrays (True: white)."""
    return [np.array(page) for page in documents.read_fax(path)]
