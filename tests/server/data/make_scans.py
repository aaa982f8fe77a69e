"""Rebuild the scans in this folder from public PDFs of py-pdf/sample-files (CC-BY-SA-4.0).

Run by hand, not by the tests: ``python tests/server/data/make_scans.py SAMPLE_FILES_DIR``,
where the folder is a checkout of https://github.com/py-pdf/sample-files. Each scan is a
rendering of a real page, saved as a 1-bit image (what an office scanner produces), and each
``.txt`` file holds the text layer of the same area: the truth the OCR is measured against.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import pypdfium2
from PIL import Image

HERE = Path(__file__).resolve().parent
DPI = 200
STAMP = "CONFIDENTIAL - BATES NO. ACME-000123"


def _render(pdf: pypdfium2.PdfDocument, index: int) -> tuple[Image.Image, str, object]:
    page = pdf[index]
    image = page.render(scale=DPI / 72, grayscale=True).to_pil().convert("L")
    return image, page.get_textpage().get_text_range(), page


def _text_in(page: object, box: tuple[float, ...]) -> str:
    """The text layer inside a pixel box of the 150 dpi rendering, in content order."""
    assert isinstance(page, pypdfium2.PdfPage)
    height = page.get_height()
    left, top, right, bottom = (value * 72 / DPI for value in box)
    text: str = page.get_textpage().get_text_bounded(left, height - bottom, right, height - top)
    return text


def _bilevel(image: Image.Image) -> Image.Image:
    return image.point(lambda value: 255 if value > 160 else 0).convert("1")


def _write_text(name: str, text: str) -> None:
    lines = [" ".join(line.replace("\ufffe", "").split()) for line in text.splitlines()]
    (HERE / name).write_text("\n".join(line for line in lines if line) + "\n", encoding="utf-8")


def rotated_letters(samples: Path) -> None:
    """The top third of a Google Docs letter, turned by 90, 180 and 270 degrees."""
    pdf = pypdfium2.PdfDocument(samples / "011-google-doc-document" / "google-doc-document.pdf")
    image, _text, page = _render(pdf, 0)
    assert isinstance(page, pypdfium2.PdfPage)
    box = _pixels(_text_box(page, 0, 600, 580, 842))
    upright = _bilevel(image.crop(box))
    _write_text("letter.txt", _text_in(page, box))
    for angle in (90, 180, 270):
        upright.rotate(angle, expand=True).save(HERE / f"letter-{angle}.png", optimize=True)


def _text_box(
    page: pypdfium2.PdfPage, left: float, right: float, low: float, high: float
) -> tuple[float, ...]:
    """The pixel box of the whole lines between ``left`` and ``right`` points, and between
    ``low`` and ``high`` points above the page's foot: a crop that cuts no line in two.
    """
    textpage = page.get_textpage()
    boxes = [textpage.get_charbox(index, loose=True) for index in range(textpage.count_chars())]
    inside = [box for box in boxes if box[0] >= left and box[2] <= right and box[2] > box[0]]
    lines = [box for box in inside if low <= box[1] and box[3] <= high]
    x0 = min(box[0] for box in lines) - 3
    x1 = max(box[2] for box in lines) + 3
    y_low = min(box[1] for box in lines)
    y_high = max(box[3] for box in lines)
    height = page.get_height()
    scale = DPI / 72
    return (x0 * scale, (height - y_high) * scale, x1 * scale, (height - y_low) * scale)


def _pixels(box: tuple[float, ...]) -> tuple[int, int, int, int]:
    left, top, right, bottom = (round(value) for value in box)
    return (left, top, right, bottom)


def three_columns(samples: Path) -> None:
    """Three columns of a two-column LaTeX paper side by side: both of page 1, one of page 2.

    The gutter stays the paper's own (10 pt, 0.14 in): narrow, as in many real papers.
    """
    pdf = pypdfium2.PdfDocument(samples / "026-latex-multicolumn" / "multicolumn.pdf")
    first, _text, page_one = _render(pdf, 0)
    second, _text, page_two = _render(pdf, 1)
    parts = [
        (first, page_one, _text_box(page_one, 60, 302, 180, 330)),
        (first, page_one, _text_box(page_one, 302, 545, 180, 330)),
        (second, page_two, _text_box(page_two, 60, 302, 180, 330)),
    ]
    boxes = [_pixels(box) for _image, _page, box in parts]
    gutter = round(10 * DPI / 72)
    width = sum(box[2] - box[0] for box in boxes) + 2 * gutter
    height = max(box[3] - box[1] for box in boxes)
    sheet = Image.new("L", (width + 80, height + 80), 255)
    x = 40
    texts = []
    for (image, page, _box), box in zip(parts, boxes, strict=True):
        sheet.paste(image.crop(box), (x, 40))
        x += box[2] - box[0] + gutter
        texts.append(_text_in(page, box))
    _bilevel(sheet).save(HERE / "three-columns.png", optimize=True)
    _write_text("three-columns.txt", "\n".join(texts))


def _pdf(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    out += trailer.encode()
    return bytes(out)


def _image_page_pdf(image: Image.Image, width: float, height: float, content: bytes) -> bytes:
    """One page drawing a 1-bit ``image`` (as /Im1) with ``content`` (may use /F1 Helvetica)."""
    bits = image.convert("1")
    data = zlib.compress(bits.tobytes(), 9)
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width:g} {height:g}] "
            "/Resources << /XObject << /Im1 5 0 R >> /Font << /F1 6 0 R >> >> "
            "/Contents 4 0 R >>".encode(),
            f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream",
            f"<< /Type /XObject /Subtype /Image /Width {bits.width} /Height {bits.height} "
            "/ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /FlateDecode "
            f"/Length {len(data)} >>\nstream\n".encode()
            + data
            + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        ]
    )


def stamped_scan(samples: Path) -> None:
    """A scanned LaTeX page (its upper part) as a page image, with a one-line text stamp."""
    pdf = pypdfium2.PdfDocument(samples / "004-pdflatex-4-pages" / "pdflatex-4-pages.pdf")
    image, _text, page = _render(pdf, 0)
    assert isinstance(page, pypdfium2.PdfPage)
    box = _pixels(_text_box(page, 0, 600, 560, 842))
    scan = Image.new("L", image.size, 255)
    scan.paste(image.crop(box), box[:2])
    _write_text("stamped-scan.txt", _text_in(page, box))
    width, height = 595.276, 841.89
    content = (
        f"q {width:g} 0 0 {height:g} 0 0 cm /Im1 Do Q\nBT /F1 11 Tf 72 40 Td ({STAMP}) Tj ET"
    ).encode()
    (HERE / "stamped-scan.pdf").write_bytes(_image_page_pdf(_bilevel(scan), width, height, content))


def page_size_bomb() -> None:
    """A 200 x 200 inch page (PDF's largest) drawing one small image over all of it."""
    side = 200 * 72
    image = Image.new("L", (64, 64), 255)
    image.paste(0, (8, 8, 56, 16))
    content = f"q {side} 0 0 {side} 0 0 cm /Im1 Do Q".encode()
    (HERE / "page-200in.pdf").write_bytes(_image_page_pdf(image, side, side, content))


def main() -> None:
    """Write every scan and its truth next to this script."""
    samples = Path(sys.argv[1])
    rotated_letters(samples)
    three_columns(samples)
    stamped_scan(samples)
    page_size_bomb()


if __name__ == "__main__":
    main()
