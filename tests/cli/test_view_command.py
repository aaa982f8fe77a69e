"""``datalab-ocr view``: the report from OCR (ocr's options and cache) or from saved results."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from datalab_ocr import OCRResult
from datalab_ocr.server import LocalServer

from .conftest import CLI, read_jsonl, stats, write_png


def real_pdf(path: Path, pages: int) -> Path:
    """A PDF PDFium can render: ``pages`` blank Letter pages, made with Pillow."""
    images = [Image.new("L", (612, 792), 255) for _ in range(pages)]
    images[0].save(path, "PDF", resolution=72.0, save_all=True, append_images=images[1:])
    return path


def pages_in(report: Path) -> list[str]:
    """The page indices the report shows, in order."""
    return re.findall(r'<article class="page" id="[^"]+" data-page-index="(\d+)"',
                      report.read_text(encoding="utf-8"))  # fmt: skip


@pytest.fixture
def cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATALAB_OCR_CACHE", raising=False)  # its folder is the test's own


def test_view_writes_one_report_with_every_page_of_every_file(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    pdf = real_pdf(tmp_path / "two.pdf", 2)
    png = write_png(tmp_path / "scan.png")
    report = tmp_path / "report.html"
    run = cli("view", pdf, png, "--base-url", server.base_url, "-o", report)
    assert run.code == 0, run.err
    assert pages_in(report) == ["0", "1", "0"]
    html = report.read_text(encoding="utf-8")
    assert "Synthetic page 2" in html
    assert html.count("data:image/webp;base64,") == 3
    assert f"wrote {report}" in run.err


def test_viewing_what_ocr_just_read_sends_no_request(
    cli: CLI, server: LocalServer, tmp_path: Path, cache_on: None
) -> None:
    pdf = real_pdf(tmp_path / "doc.pdf", 1)
    assert cli("ocr", pdf, "--base-url", server.base_url).code == 0
    requests = stats(server)["requests"]
    run = cli("view", pdf, "--base-url", server.base_url, "-o", tmp_path / "r.html")
    assert run.code == 0, run.err
    assert stats(server)["requests"] == requests


def test_view_takes_ocrs_page_range(cli: CLI, server: LocalServer, tmp_path: Path) -> None:
    pdf = real_pdf(tmp_path / "three.pdf", 3)
    report = tmp_path / "r.html"
    run = cli("view", pdf, "--page-range", "1-2", "--base-url", server.base_url, "-o", report)
    assert run.code == 0, run.err
    assert pages_in(report) == ["1", "2"]


def test_ocr_full_keeps_each_lines_box_in_its_json_line(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    pdf = real_pdf(tmp_path / "doc.pdf", 1)
    out = tmp_path / "results.jsonl"
    assert cli("ocr", pdf, "--full", "--base-url", server.base_url, "-o", out).code == 0
    [record] = read_jsonl(out)
    result = OCRResult.model_validate(record["result"])
    assert result.pages[0].text_lines[0].bbox == [144.0, 144.0, 600.0, 172.0]
    assert result.pages[0].image_bbox == [0.0, 0.0, 1224.0, 1584.0]


def test_view_shows_results_saved_by_ocr_full_without_any_service(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    pdf = real_pdf(tmp_path / "doc.pdf", 2)
    saved = tmp_path / "results.jsonl"
    assert cli("ocr", pdf, "--full", "--base-url", server.base_url, "-o", saved).code == 0
    server.stop()  # nothing left to ask
    report = tmp_path / "r.html"
    run = cli("view", pdf, "--results", saved, "-o", report)
    assert run.code == 0, run.err
    assert "server" not in run.err
    assert pages_in(report) == ["0", "1"]
    assert "Synthetic page 2" in report.read_text(encoding="utf-8")


def test_view_shows_one_result_saved_as_json(cli: CLI, server: LocalServer, tmp_path: Path) -> None:
    pdf = real_pdf(tmp_path / "doc.pdf", 1)
    saved = tmp_path / "results.jsonl"
    assert cli("ocr", pdf, "--full", "--base-url", server.base_url, "-o", saved).code == 0
    result = OCRResult.model_validate(read_jsonl(saved)[0]["result"])
    single = tmp_path / "result.json"
    single.write_text(result.model_dump_json(), encoding="utf-8")
    run = cli("view", pdf, "--results", single, "-o", tmp_path / "r.html")
    assert run.code == 0, run.err


def test_results_written_without_full_ask_for_full(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    pdf = real_pdf(tmp_path / "doc.pdf", 1)
    saved = tmp_path / "results.jsonl"
    assert cli("ocr", pdf, "--base-url", server.base_url, "-o", saved).code == 0
    run = cli("view", pdf, "--results", saved, "-o", tmp_path / "r.html")
    assert run.code == 2
    assert "written without --full" in run.err
    assert not (tmp_path / "r.html").exists()


def test_results_of_other_files_are_refused_naming_the_file(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    saved = tmp_path / "results.jsonl"
    pdf = real_pdf(tmp_path / "doc.pdf", 1)
    assert cli("ocr", pdf, "--full", "--base-url", server.base_url, "-o", saved).code == 0
    other = real_pdf(tmp_path / "other.pdf", 1)
    run = cli("view", other, "--results", saved, "-o", tmp_path / "r.html")
    assert run.code == 2
    assert f"has no result for {other}" in run.err


def test_highlight_draws_the_citation_read_from_a_file(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    pdf = real_pdf(tmp_path / "doc.pdf", 1)
    bboxes = tmp_path / "chunk.json"
    bboxes.write_text(json.dumps([{"page_index": 0, "x0": 0.1, "y0": 0.05, "x1": 0.5, "y1": 0.2}]))
    report = tmp_path / "r.html"
    run = cli("view", pdf, "--highlight", f"@{bboxes}", "--base-url", server.base_url, "-o", report)
    assert run.code == 0, run.err
    html = report.read_text(encoding="utf-8")
    assert '<div class="cite" style="left:10.000%;top:5.000%;width:40.000%;height:15.000%">' in html
    assert html.count('<li class="line cited"') == 1  # "Synthetic page 1": 0.12-0.49 x 0.09-0.11


def test_a_malformed_highlight_is_refused_before_any_ocr(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    pdf = real_pdf(tmp_path / "doc.pdf", 1)
    requests = stats(server)["requests"]
    run = cli("view", pdf, "--highlight", '[{"page_index": 0}]', "--base-url", server.base_url,
              "-o", tmp_path / "r.html")  # fmt: skip
    assert run.code == 2
    assert "bboxes entry 0: missing" in run.err
    assert stats(server)["requests"] == requests


@pytest.mark.parametrize(
    ("size", "complaint"), [("50", "give 100 or more"), ("20000", "WebP: 16383")]
)
def test_an_image_size_a_picture_cannot_have_is_a_usage_error(
    cli: CLI, tmp_path: Path, size: str, complaint: str
) -> None:
    pdf = real_pdf(tmp_path / "a.pdf", 1)
    run = cli("view", pdf, "--local", "--image-size", size, "-o", tmp_path / "r.html")
    assert run.code == 2
    assert complaint in run.err
    assert "Traceback" not in run.err


def test_highlight_with_several_files_is_a_usage_error(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    one, two = real_pdf(tmp_path / "one.pdf", 1), real_pdf(tmp_path / "two.pdf", 1)
    run = cli("view", one, two, "--highlight", "[]", "--base-url", server.base_url, "-o",
              tmp_path / "r.html")  # fmt: skip
    assert run.code == 2
    assert "give the one the chunk came from" in run.err


def test_a_failed_file_is_listed_in_the_report_and_exits_1(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    good = real_pdf(tmp_path / "good.pdf", 1)
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    report = tmp_path / "r.html"
    run = cli("view", good, empty, "--base-url", server.base_url, "-o", report)
    assert run.code == 1
    assert f"FAILED  {empty}" in run.err
    html = report.read_text(encoding="utf-8")
    assert "1 file could not be OCRed" in html
    assert pages_in(report) == ["0"]


def test_a_report_in_a_missing_folder_is_refused_before_any_ocr(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    pdf = real_pdf(tmp_path / "doc.pdf", 1)
    run = cli("view", pdf, "--base-url", server.base_url, "-o", tmp_path / "no" / "r.html")
    assert run.code == 2
    assert "no folder" in run.err
    assert stats(server)["requests"] == 0


def test_a_failure_recorded_in_saved_results_is_listed_in_the_report(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    good = real_pdf(tmp_path / "good.pdf", 1)
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    saved = tmp_path / "results.jsonl"
    assert cli("ocr", good, empty, "--full", "--base-url", server.base_url, "-o", saved).code == 1
    report = tmp_path / "r.html"
    run = cli("view", good, empty, "--results", saved, "-o", report)
    assert run.code == 1
    assert f"FAILED  {empty}: InvalidInputError" in run.err
    assert "1 file could not be OCRed" in report.read_text(encoding="utf-8")
    assert pages_in(report) == ["0"]
