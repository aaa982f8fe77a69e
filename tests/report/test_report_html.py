"""The report's HTML, read without a browser: escaping, self-containment, citations, errors."""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from datalab_ocr import OCRPage, OCRResult, TextLine
from datalab_ocr._geometry import GeometryError, PageSpan, encode_bboxes
from datalab_ocr.report import PageImageError, ReportDocument, render_report, write_report

from .conftest import LINES, ocr_page


def _references(report: str) -> list[str]:
    """Every src and href of the report's elements."""
    found: list[str] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend(v or "" for k, v in attrs if k in ("src", "href", "srcset", "action"))

    Collector().feed(report)
    return found


def test_ocr_text_is_escaped_never_markup(pdf_document: Path, pdf_result: OCRResult) -> None:
    report = render_report([(pdf_result, pdf_document)])
    assert "&lt;script&gt;window.injected = 1&lt;/script&gt;" in report
    assert "<script>window.injected" not in report
    assert "<img src=x" not in report
    assert "&quot;&gt;&lt;img src=x onerror=&quot;window.injected = 2&quot;&gt;" in report


def test_text_that_looks_like_a_placeholder_is_shown_as_is(png_bytes: bytes) -> None:
    page = OCRPage(
        page_index=0,
        image_bbox=[0, 0, 1224, 1584],
        text_lines=[TextLine(text="__BODY__ __TITLE__", bbox=[10, 10, 100, 30])],
    )
    report = render_report([(OCRResult(status="complete", pages=[page]), png_bytes)])
    assert report.count("__BODY__ __TITLE__") == 1
    assert report.count("<main>") == 1


def test_the_report_loads_nothing_from_elsewhere(
    pdf_document: Path, pdf_result: OCRResult, png_bytes: bytes, png_result: OCRResult
) -> None:
    report = render_report([(pdf_result, pdf_document), (png_result, png_bytes)])
    references = _references(report)
    pictures = [ref for ref in references if ref.startswith("data:image/webp;base64,")]
    assert len(pictures) == 2
    assert sorted(set(references) - set(pictures)) == ["#d0", "#d1"]  # the list of documents
    assert "@import" not in report
    assert re.search(r"url\((?!data:)", report) is None
    assert "<link" not in report


def test_every_line_is_listed_and_every_box_drawn(
    pdf_document: Path, pdf_result: OCRResult
) -> None:
    report = render_report([(pdf_result, pdf_document)])
    assert report.count('<li class="line') == len(LINES) + 1  # the line without a box too
    assert report.count('<div class="box"') == len(LINES)
    assert report.count("<img ") == 1  # only the page the result holds is pictured


def test_a_result_with_a_page_the_file_lacks_names_the_file(
    pdf_document: Path, pdf_result: OCRResult
) -> None:
    pdf_result.pages[0].page_index = 7
    with pytest.raises(PageImageError, match=r"tide-table\.pdf has 2 pages.*page index 7"):
        render_report([(pdf_result, pdf_document)])


def test_a_report_that_fails_midway_leaves_the_earlier_file_untouched(
    tmp_path: Path, pdf_document: Path, pdf_result: OCRResult, png_bytes: bytes
) -> None:
    target = tmp_path / "report.html"
    target.write_text("the earlier report", encoding="utf-8")
    pdf_result.pages[0].page_index = 7  # the second document has no such page
    with pytest.raises(PageImageError):
        write_report([(OCRResult(status="complete"), png_bytes), (pdf_result, pdf_document)],
                     target)  # fmt: skip
    assert target.read_text(encoding="utf-8") == "the earlier report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "tide-table.pdf"]


def test_a_missing_source_file_is_named(tmp_path: Path, png_result: OCRResult) -> None:
    with pytest.raises(PageImageError, match=r"gone\.png: cannot read it"):
        render_report([(png_result, tmp_path / "gone.png")])


def test_a_picture_of_another_shape_than_the_service_read_is_flagged_on_its_page(
    png_bytes: bytes, png_result: OCRResult
) -> None:
    png_result.pages[0].image_bbox = [0, 0, 1584, 1224]  # landscape; the picture is portrait
    report = render_report([(png_result, png_bytes)])
    assert "has another shape than the page the service read" in report


def test_misshapen_pages_are_logged_once_per_document(
    pdf_document: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pages = [ocr_page(0), ocr_page(1)]
    for page in pages:
        page.image_bbox = [0, 0, 1584, 1224]  # landscape; the document is portrait
    render_report([(OCRResult(status="complete", pages=pages), pdf_document)])
    [record] = [r for r in caplog.records if "another shape" in r.getMessage()]
    assert "on 2 pages (page 1, 2)" in record.getMessage()


def test_a_page_without_its_size_lists_its_text_without_boxes(
    png_bytes: bytes, png_result: OCRResult
) -> None:
    png_result.pages[0].image_bbox = None  # the hosted API may leave it out
    report = render_report([(png_result, png_bytes)])
    assert '<div class="box"' not in report
    assert report.count('<li class="line') == len(LINES) + 1
    assert "the result gives no usable line boxes (or page size): only its text" in report


def test_an_office_file_gets_its_boxes_on_a_blank_page(png_result: OCRResult) -> None:
    docx = b"PK\x03\x04" + b"\x00" * 64  # what a .docx starts with: not a picture
    report = render_report([ReportDocument(png_result, docx, name="minutes.docx")])
    assert "no picture: only PDFs and images are pictured, not Word or PowerPoint" in report
    assert report.count('<div class="box"') == len(LINES)


def test_a_pdf_pdfium_cannot_open_still_shows_its_boxes_and_text(
    tmp_path: Path, png_result: OCRResult, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "repaired-by-the-service.pdf"
    broken.write_bytes(b"%PDF-1.4\n" + b"\x00" * 200)  # the service may repair what PDFium cannot
    report = render_report([(png_result, broken)])
    assert "no picture: PDFium cannot open this file" in report
    assert report.count('<div class="box"') == len(LINES)
    assert "PDFium cannot open it" in caplog.text


def test_citation_marks_its_region_and_the_lines_inside(
    png_bytes: bytes, png_result: OCRResult
) -> None:
    # Lines 2 and 3 of the page (y 310..430 of 1584), as a splitter writes them.
    span = PageSpan(0, 0.1, 300 / 1584, 0.7, 440 / 1584)
    report = render_report([(png_result, png_bytes)], highlight=encode_bboxes([span]))
    assert report.count('<div class="cite"') == 1
    cited = re.findall(r'<li class="line cited"[^>]*>.*?<span class="t"[^>]*>(.*?)</span>', report)
    assert cited == ["smudged line read poorly", "a middling reading"]


def test_a_citation_on_a_page_the_result_lacks_is_noted(
    pdf_document: Path, pdf_result: OCRResult, caplog: pytest.LogCaptureFixture
) -> None:
    # The result holds page index 1 only (page_range="1"); the chunk came from page index 0.
    report = render_report(
        [(pdf_result, pdf_document)], highlight=encode_bboxes([PageSpan(0, 0.1, 0.1, 0.5, 0.2)])
    )
    assert "the citation names page_index 0 (page 1), which this result does not hold" in report
    assert '<div class="cite"' not in report
    assert "the citation names page_index 0 (page 1)" in caplog.text


def test_an_empty_citation_is_noted(
    png_bytes: bytes, png_result: OCRResult, caplog: pytest.LogCaptureFixture
) -> None:
    report = render_report([(png_result, png_bytes)], highlight="[]")
    assert '<div class="cite"' not in report
    assert "the citation holds no region" in caplog.text


def test_a_source_that_is_not_a_document_is_refused(png_result: OCRResult) -> None:
    with pytest.raises(PageImageError, match=r"notes\.txt: not a PDF, an image or an Office"):
        render_report([ReportDocument(png_result, b"meeting notes\n", name="notes.txt")])


def test_a_picture_size_beyond_webp_is_refused(png_bytes: bytes, png_result: OCRResult) -> None:
    with pytest.raises(ValueError, match="WebP's limit"):
        render_report([(png_result, png_bytes)], max_side=20_000)


def test_highlight_on_several_documents_is_refused(png_bytes: bytes, png_result: OCRResult) -> None:
    with pytest.raises(ValueError, match="single document"):
        render_report([(png_result, png_bytes)] * 2, highlight="[]")


def test_a_malformed_highlight_says_what_is_wrong(png_bytes: bytes, png_result: OCRResult) -> None:
    with pytest.raises(GeometryError, match="outside 0..1"):
        render_report(
            [(png_result, png_bytes)],
            highlight='[{"page_index": 0, "x0": 0, "y0": 0, "x1": 120, "y1": 300}]',
        )


def test_a_confidence_that_is_not_a_number_counts_as_none(png_bytes: bytes) -> None:
    page = OCRPage(
        page_index=0,
        image_bbox=[0, 0, 1224, 1584],
        text_lines=[TextLine(text="odd", confidence=float("nan"), bbox=[10, 10, 300, 40])],
    )
    report = render_report([(OCRResult(status="complete", pages=[page]), png_bytes)])
    assert report.count('data-c=""') == 2  # its box and its text line
    assert '<span class="c">-</span>' in report


def test_write_report_writes_what_render_report_returns(
    tmp_path: Path, png_bytes: bytes, png_result: OCRResult
) -> None:
    path = write_report([(png_result, png_bytes)], tmp_path / "r.html")
    assert path.read_text(encoding="utf-8") == render_report([(png_result, png_bytes)])


def test_write_report_writes_utf8(tmp_path: Path, png_bytes: bytes) -> None:
    page = OCRPage(
        page_index=0,
        image_bbox=[0, 0, 1224, 1584],
        text_lines=[TextLine(text="مرحبا بالعالم", confidence=0.7, bbox=[10, 10, 300, 40])],
    )
    path = write_report(
        [(OCRResult(status="complete", pages=[page]), png_bytes)], tmp_path / "r.html"
    )
    assert "مرحبا بالعالم" in path.read_text(encoding="utf-8")


def test_without_pillow_or_pdfium_the_error_names_the_report_extra(
    monkeypatch: pytest.MonkeyPatch, png_bytes: bytes, png_result: OCRResult
) -> None:
    monkeypatch.setitem(sys.modules, "pypdfium2", None)
    with pytest.raises(ImportError, match=r"pip install 'datalab-ocr\[report\]'"):
        render_report([(png_result, png_bytes)])
