"""End to end: a PDF with a portrait, a landscape and a /Rotate 90 page, through the local
server, the LangChain loader and the splitter; each chunk's region, mapped back onto the
PDF, holds exactly the chunk's text."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from reportlab.pdfgen import canvas

from datalab_ocr import PAGE_SEPARATOR, PageSpan, PollPolicy, decode_bboxes
from datalab_ocr.langchain import DatalabOCRLoader, DatalabOCRTextSplitter
from datalab_ocr.server import LocalServer, ServerConfig

LETTER = (612.0, 792.0)
LINES_PER_PAGE = 14


def line_text(page: int, number: int) -> str:
    return f"Page {page} line {number} tide gauge reading {number * 7 + page} cm"


def three_pages() -> bytes:
    """Letter portrait, letter landscape, and a landscape sheet shown portrait by /Rotate
    90 with its text drawn so that it reads upright on screen."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=LETTER)
    for page, (size, rotate) in enumerate([(LETTER, 0), (LETTER[::-1], 0), (LETTER[::-1], 90)]):
        pdf.setPageSize(size)
        pdf.setPageRotation(rotate)
        pdf.setFont("Helvetica", 11)
        if rotate:
            pdf.rotate(90)  # displayed (x, y from the top) is (x, -y) in these coordinates
        for number in range(LINES_PER_PAGE):
            top = 80 + 20 * number
            if rotate:
                pdf.drawString(72, -top, line_text(page, number))
            else:
                pdf.drawString(72, size[1] - top, line_text(page, number))
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(ServerConfig(workers=1, cache_size=0)) as running:
        yield running


def pdf_rectangle(page: pdfium.PdfPage, span: PageSpan) -> tuple[float, float, float, float]:
    """A region in fractions of the displayed page as PDF ``(left, bottom, right, top)``."""
    left, bottom, right, top = page.get_cropbox()
    width, height = right - left, top - bottom
    rotation = page.get_rotation() % 360
    shown_w, shown_h = (height, width) if rotation in (90, 270) else (width, height)
    corners = []
    for fx, fy in ((span.x0, span.y0), (span.x1, span.y1)):
        dx, dy = fx * shown_w, fy * shown_h
        corners.append(
            {
                0: (left + dx, top - dy),
                90: (left + dy, bottom + dx),
                180: (right - dx, bottom + dy),
                270: (right - dy, top - dx),
            }[rotation]
        )
    (ax, ay), (bx, by) = corners
    return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def letters(text: str) -> str:
    # PDFium puts no line breaks between lines of turned text: compare without spaces.
    return re.sub(r"\s+", "", text)


def test_chunk_regions_hold_their_text_on_portrait_landscape_and_rotated_pages(
    server: LocalServer, tmp_path: Path
) -> None:
    path = tmp_path / "gauges.pdf"
    path.write_bytes(three_pages())
    loader = DatalabOCRLoader(
        path, base_url=server.base_url, mode="file", polling=PollPolicy(timeout=60)
    )
    splitter = DatalabOCRTextSplitter(chunk_size=500, chunk_overlap=0)

    chunks = splitter.split_documents(loader.load())
    loader.close()

    pdf = pdfium.PdfDocument(path)
    spanning = 0
    for chunk in chunks:
        spans = decode_bboxes(chunk.metadata["bboxes"])
        texts = chunk.page_content.split(PAGE_SEPARATOR)
        assert len(spans) == len(texts)
        spanning += len(spans) > 1
        for span, text in zip(spans, texts, strict=True):
            page = pdf[span.page_index]
            inside = page.get_textpage().get_text_bounded(*pdf_rectangle(page, span))
            assert letters(inside) == letters(text), f"page {span.page_index}"
    assert spanning >= 2  # both page breaks were crossed by a chunk
    assert {span.page_index for c in chunks for span in decode_bboxes(c.metadata["bboxes"])} == {
        0,
        1,
        2,
    }
