"""The report in a real headless Chromium: it loads cleanly, boxes sit on their lines, and
search, the low-confidence filter and citations do what a reader sees them do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from datalab_ocr import OCRResult, TextLine
from datalab_ocr._geometry import PageSpan, encode_bboxes
from datalab_ocr.report import write_report

from .conftest import LINES, SERVICE_SIZE, OpenReport

Opener = Callable[[Path], OpenReport]
TOLERANCE = 1.5  # CSS pixels: percentages rounded to 1/10,000 of the page, and subpixel layout


@pytest.fixture
def pdf_report(
    tmp_path: Path, pdf_document: Path, pdf_result: OCRResult, open_report: Opener
) -> OpenReport:
    return open_report(write_report([(pdf_result, pdf_document)], tmp_path / "report.html"))


def _rect(page: Any, selector: str) -> dict[str, float]:
    rect: dict[str, float] = page.eval_on_selector(
        selector,
        "e => { const r = e.getBoundingClientRect();"
        " return {x: r.x, y: r.y, width: r.width, height: r.height}; }",
    )
    return rect


def _visible_boxes(page: Any) -> list[int]:
    found: list[str] = page.eval_on_selector_all(
        ".box", "els => els.filter(e => e.getClientRects().length).map(e => e.dataset.l)"
    )
    return sorted(int(value) for value in found)


def test_the_report_loads_without_console_errors_or_requests(pdf_report: OpenReport) -> None:
    assert pdf_report.page.locator(".box").count() == len(LINES)
    assert pdf_report.problems == []


def test_each_box_lies_on_its_line_of_the_displayed_picture(pdf_report: OpenReport) -> None:
    page = pdf_report.page
    picture = _rect(page, ".sheet img")
    width, height = SERVICE_SIZE
    for number, (_, _, _, (x0, y0, x1, y1)) in enumerate(LINES):
        box = _rect(page, f'.box[data-l="{number}"]')
        expected = {
            "x": picture["x"] + x0 / width * picture["width"],
            "y": picture["y"] + y0 / height * picture["height"],
            "width": (x1 - x0) / width * picture["width"],
            "height": (y1 - y0) / height * picture["height"],
        }
        for key, value in expected.items():
            assert box[key] == pytest.approx(value, abs=TOLERANCE), (number, key)


def test_ocr_text_shows_as_text_and_runs_nothing(pdf_report: OpenReport) -> None:
    page = pdf_report.page
    texts = page.eval_on_selector_all(".line .t", "els => els.map(e => e.textContent)")
    assert LINES[4][0] in texts and LINES[5][0] in texts
    assert page.evaluate("window.injected === undefined")
    assert page.locator("main script, main img[src=x]").count() == 0
    assert pdf_report.problems == []


def test_search_marks_the_word_in_the_text_and_its_line_on_the_page(
    pdf_report: OpenReport,
) -> None:
    page = pdf_report.page
    page.fill("#search", "TIDE")
    page.press("#search", "Enter")
    marks = page.eval_on_selector_all("mark", "els => els.map(e => e.textContent)")
    assert marks == ["tide", "tide"]
    matched = page.eval_on_selector_all(".box.match", "els => els.map(e => e.dataset.l)")
    assert matched == ["0", "9"]
    assert "1 of 2" in page.inner_text("#match-count")
    page.fill("#search", "")
    page.press("#search", "Enter")
    assert page.locator("mark, .box.match").count() == 0


def test_the_low_confidence_filter_hides_every_box_at_or_above_the_threshold(
    pdf_report: OpenReport,
) -> None:
    page = pdf_report.page
    page.check("#only-low")
    low = [n for n, line in enumerate(LINES) if line[1] is not None and line[1] < 0.75]
    assert _visible_boxes(page) == low == [2, 4]
    page.fill("#threshold", "0.9")
    assert _visible_boxes(page) == [2, 3, 4, 9]
    assert "4 of 11 lines below 0.90" in page.inner_text("#low-count")
    page.uncheck("#only-low")
    assert _visible_boxes(page) == list(range(len(LINES)))


def test_the_citation_is_drawn_on_its_region_of_the_page(
    tmp_path: Path, png_bytes: bytes, png_result: OCRResult, open_report: Opener
) -> None:
    span = PageSpan(0, 0.1, 0.2, 0.7, 0.3)
    path = write_report(
        [(png_result, png_bytes)], tmp_path / "r.html", highlight=encode_bboxes([span])
    )
    report = open_report(path)
    picture = _rect(report.page, ".sheet img")
    cite = _rect(report.page, ".cite")
    assert cite["x"] == pytest.approx(picture["x"] + 0.1 * picture["width"], abs=TOLERANCE)
    assert cite["y"] == pytest.approx(picture["y"] + 0.2 * picture["height"], abs=TOLERANCE)
    assert cite["width"] == pytest.approx(0.6 * picture["width"], abs=TOLERANCE)
    assert cite["height"] == pytest.approx(0.1 * picture["height"], abs=TOLERANCE)
    assert report.page.eval_on_selector_all(
        ".line.cited .t", "els => els.map(e => e.textContent)"
    ) == ["smudged line read poorly", "a middling reading"]
    assert report.problems == []


def test_the_cited_lines_are_in_view_in_a_long_page_text(
    tmp_path: Path, png_bytes: bytes, png_result: OCRResult, open_report: Opener
) -> None:
    # A page of 120 short lines: its text list scrolls, and the citation is near the foot.
    page = png_result.pages[0]
    page.text_lines = [
        TextLine(text=f"line {n}", confidence=0.9, bbox=[144.0, 12.0 * n, 400.0, 12.0 * n + 10])
        for n in range(120)
    ]
    span = PageSpan(0, 0.05, 12.0 * 110 / SERVICE_SIZE[1], 0.5, 12.0 * 113 / SERVICE_SIZE[1])
    path = write_report(
        [(png_result, png_bytes)], tmp_path / "r.html", highlight=encode_bboxes([span])
    )
    report = open_report(path)
    visible = report.page.eval_on_selector(
        ".line.cited",
        """line => {
            const list = line.parentElement.getBoundingClientRect();
            const own = line.getBoundingClientRect();
            return own.top >= list.top && own.bottom <= list.bottom;
        }""",
    )
    assert visible
    assert report.problems == []


def test_hovering_a_box_shows_its_text_and_confidence(pdf_report: OpenReport) -> None:
    page = pdf_report.page
    page.hover('.box[data-l="2"]')
    tip = page.inner_text("#tip")
    assert "confidence 0.420 · OCR" in tip
    assert "smudged line read poorly" in tip
