"""Page layout for OCR: the render budget, region choice, reading order, failure logging."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image, ImageDraw, ImageOps

from datalab_ocr._models import TextLine
from datalab_ocr.server.config import ServerConfig
from datalab_ocr.server.engine import DocumentError, prepare_document, process_pages
from datalab_ocr.server.formats import IMAGE, PDF
from datalab_ocr.server.jobs import JobStore
from datalab_ocr.server.layout import (
    ImageRegion,
    fit_scale,
    merge_reading_order,
    order_lines,
    regions_to_ocr,
    rotate_lines,
)
from datalab_ocr.server.limits import Stats
from datalab_ocr.server.options import JobOptions
from datalab_ocr.server.runner import JobRunner, StoredUpload

from .server_helpers import cer, image_bytes, render_lines


def _line(text: str, box: list[float], confidence: float = 1.0) -> TextLine:
    x0, y0, x1, y1 = box
    return TextLine(
        text=text,
        confidence=confidence,
        polygon=[[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
        bbox=box,
    )


def test_the_render_scale_keeps_a_page_within_the_pixel_budget() -> None:
    assert fit_scale(612, 792, 2.0, 25_000_000) == 2.0  # US Letter at 144 dpi: 1.9 Mpx
    scale = fit_scale(14_400, 14_400, 2.0, 25_000_000)
    assert (14_400 * scale) ** 2 <= 25_000_000
    assert (14_400 * scale) ** 2 > 24_900_000


def test_a_stamp_above_a_scan_reads_first_and_one_below_it_last() -> None:
    header = _line("HEADER", [100, 10, 300, 30])
    footer = _line("Bates 000123", [100, 980, 300, 1000])
    # Two OCR columns: the second starts higher than the first one ends.
    scan = [
        _line("left one", [50, 100, 400, 120], 0.9),
        _line("left two", [50, 900, 400, 920], 0.9),
        _line("right one", [450, 100, 800, 120], 0.9),
    ]
    merged = merge_reading_order([header, footer], [scan])
    assert [line.text for line in merged] == [
        "HEADER",
        "left one",
        "left two",
        "right one",
        "Bates 000123",
    ]


def test_the_text_of_a_figure_in_the_right_column_reads_inside_that_column() -> None:
    left = [_line(f"left {row}", [50, 100 + 30 * row, 400, 120 + 30 * row]) for row in range(10)]
    right = [_line(f"right {row}", [450, 100 + 30 * row, 800, 120 + 30 * row]) for row in range(4)]
    below = [_line(f"below {row}", [450, 400 + 30 * row, 800, 420 + 30 * row]) for row in range(3)]
    figure = [_line("figure label", [500, 240, 700, 260], 0.9)]
    merged = merge_reading_order([*left, *right, *below], [figure])
    assert [line.text for line in merged] == [
        line.text for line in [*left, *right, *figure, *below]
    ]


def test_lines_found_one_by_one_read_column_by_column_under_their_heading() -> None:
    heading = _line("heading", [100, 20, 900, 60])
    rows = range(5)
    columns = [
        [_line(f"{name} {row}", [x, 100 + 30 * row, x + 250, 120 + 30 * row]) for row in rows]
        for name, x in (("left", 50), ("middle", 320), ("right", 590))
    ]
    footer = _line("page 1", [450, 400, 520, 420])
    by_height = sorted(
        [heading, footer, *(line for column in columns for line in column)],
        key=lambda line: (line.bbox[1], line.bbox[0]),  # type: ignore[index]
    )
    expected = [heading, *columns[0], *columns[1], *columns[2], footer]
    assert [line.text for line in order_lines(by_height)] == [line.text for line in expected]


def test_only_large_images_with_almost_no_text_over_them_are_ocred() -> None:
    letter_pixels = [0.0, 0.0, 1224.0, 1584.0]
    scan = (ImageRegion(0, 0, 612, 792), letter_pixels)
    logo = (ImageRegion(72, 700, 108, 736), [144.0, 112.0, 216.0, 184.0])  # half an inch
    stamp = _line("CONFIDENTIAL - BATES NO. ACME-000123", [144, 1500, 700, 1530])
    assert regions_to_ocr([scan, logo], [stamp]) == [letter_pixels]
    # An OCRed scan's own invisible text layer: 30 lines of 80 characters over the page.
    text_layer = [_line("x" * 80, [144, 100 + 40 * row, 1000, 130 + 40 * row]) for row in range(30)]
    assert regions_to_ocr([scan], text_layer) == []


@pytest.mark.parametrize("angle", [90, 180, 270])
def test_lines_read_on_a_turned_copy_map_back_onto_the_original(angle: int) -> None:
    upright = Image.new("L", (300, 200), 255)
    ImageDraw.Draw(upright).rectangle((10, 20, 109, 39), fill=0)
    # The image as given: turning it ``angle`` degrees counter-clockwise makes it upright.
    given = upright.rotate(-angle, expand=True)
    assert given.rotate(angle, expand=True).tobytes() == upright.tobytes()
    (mapped,) = rotate_lines([_line("word", [10, 20, 110, 40])], angle, given.size)
    assert mapped.bbox == [float(value) for value in ImageOps.invert(given).getbbox() or ()]


def _prepared(path: Path, kind: str) -> object:
    return prepare_document(
        str(path), kind, suffix=".pdf", max_image_pixels=100_000_000, office_timeout=10
    )


def test_a_page_over_the_pixel_budget_is_rendered_smaller_and_still_read(tmp_path: Path) -> None:
    image = render_lines(["Tide tables for the harbour", "High water at 06:12"], size=40)
    path = tmp_path / "scan.pdf"
    # 72 dpi in the PDF: 1 px = 1 pt; at the default 2x this page is 4 times the budget.
    path.write_bytes(image_bytes(image.convert("RGB"), "PDF"))
    budget = image.width * image.height
    result = process_pages(
        _prepared(path, PDF),  # type: ignore[arg-type]
        [0],
        engine="tesseract",
        render_scale=2.0,
        max_image_pixels=100_000_000,
        max_render_pixels=budget,
    )
    (page,) = result.pages
    _, _, width, height = page["image_bbox"]
    assert width * height <= budget
    text = "\n".join(line["text"] for line in page["text_lines"])
    assert cer("Tide tables for the harbour\nHigh water at 06:12", text) <= 0.05


def test_an_image_over_the_pixel_budget_is_read_smaller_with_boxes_in_its_own_pixels(
    tmp_path: Path,
) -> None:
    image = render_lines(["Tide tables for the harbour"], size=56, width=1400)
    path = tmp_path / "scan.png"
    path.write_bytes(image_bytes(image))
    result = process_pages(
        _prepared(path, IMAGE),  # type: ignore[arg-type]
        [0],
        engine="tesseract",
        render_scale=2.0,
        max_image_pixels=100_000_000,
        max_render_pixels=image.width * image.height // 3,
    )
    (page,) = result.pages
    assert page["image_bbox"] == [0.0, 0.0, float(image.width), float(image.height)]
    (line,) = page["text_lines"]
    assert line["text"] == "Tide tables for the harbour"
    assert line["bbox"][0] == pytest.approx(40, abs=6)  # the text starts at the 40 px margin
    assert line["bbox"][2] <= image.width


def test_a_page_that_would_render_below_the_ocr_resolution_is_refused(tmp_path: Path) -> None:
    pdf = pypdfium2.PdfDocument.new()
    pdf.new_page(72 * 120, 72 * 120).close()
    path = tmp_path / "poster.pdf"
    pdf.save(path)
    pdf.close()
    with pytest.raises(DocumentError, match=r"Page 1 is 120 x 120 inches: .* 42 dpi, below"):
        process_pages(
            _prepared(path, PDF),  # type: ignore[arg-type]
            [0],
            engine="tesseract",
            render_scale=2.0,
            max_image_pixels=100_000_000,
        )


def _failing_job(tmp_path: Path, error: Exception) -> tuple[JobRunner, str | None]:
    runner = JobRunner(ServerConfig(workers=1), JobStore(ttl=60, cache_size=0), Stats())

    async def fail(*_args: object) -> None:
        raise error

    runner._result = fail  # type: ignore[method-assign,assignment]
    upload = StoredUpload(
        folder=tmp_path,
        path=tmp_path / "upload",
        size=0,
        sha256="0" * 64,
        head=b"",
        filename="doc.pdf",
        content_type="application/pdf",
    )
    job = runner.store.create(0.0)
    try:
        asyncio.run(runner._run_to_completion(job, upload, PDF, JobOptions()))
    finally:
        runner.pool.shutdown()
    assert job.result is not None
    assert job.result.success is False
    return runner, job.result.error


@pytest.mark.parametrize(
    "error", [DocumentError("The PDF could not be opened"), RuntimeError("no bitmap")]
)
def test_a_failed_job_is_logged_in_one_line_without_a_traceback(
    error: Exception, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="datalab_ocr")
    _failing_job(tmp_path, error)
    (record,) = [r for r in caplog.records if r.name == "datalab_ocr.server.runner"]
    assert str(error) in record.getMessage()
    assert record.exc_info is None


def test_an_unexpected_failure_names_its_cause_and_logs_its_traceback_at_debug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="datalab_ocr")
    _runner, message = _failing_job(tmp_path, RuntimeError("no bitmap"))
    assert message == "Internal error while processing the document: RuntimeError: no bitmap"
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert len(debug) == 1


def test_an_upright_page_that_reads_well_skips_orientation_detection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datalab_ocr.server.ocr_tesseract import TesseractEngine

    engine = TesseractEngine()
    asked: list[int] = []

    def orientation(_image: Image.Image, dpi: int) -> int:
        asked.append(dpi)
        return 0

    monkeypatch.setattr(engine, "_orientation", orientation)
    upright = render_lines(["Tide tables for the harbour", "High water at 06:12"])
    texts = [line.text for line in engine.recognize(upright, 144)]
    assert texts == ["Tide tables for the harbour", "High water at 06:12"]
    assert asked == []
    engine.recognize(upright.rotate(180), 144)
    assert asked == [144]
