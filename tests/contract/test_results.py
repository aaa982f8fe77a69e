"""Successful jobs: pages, page selection and the service's cache, on both clients."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from datalab_ocr import OCRResult
from datalab_ocr.server import LocalServer

from .conftest import Contract, server_stats, write_pdf

pytestmark = pytest.mark.contract

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "data"


def test_ocr_returns_every_page_with_its_index_and_the_servers_number(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    run = contract(engine="none")
    result: OCRResult = run.call("ocr", write_pdf(tmp_path, "three.pdf", 3))
    assert result.status == "complete"
    assert result.success is True
    assert result.request_id
    assert result.page_count == 3
    assert [page.page_index for page in result.pages] == [0, 1, 2]
    assert [page.page for page in result.pages] == [1, 2, 3]
    assert result.pages[1].text == "Synthetic page 2"
    assert result.pages[0].mean_confidence == 1.0
    assert result.versions == {"engine": "none"}


def test_page_range_is_zero_based_and_pages_keep_their_original_index(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    run = contract(engine="none")
    result: OCRResult = run.call("ocr", write_pdf(tmp_path, "six.pdf", 6), page_range="1,4-5")
    assert [page.page_index for page in result.pages] == [1, 4, 5]
    # The server numbers pages 1-based in the original document, not in the selection.
    assert [page.page for page in result.pages] == [2, 5, 6]
    assert [page.text for page in result.pages] == [
        "Synthetic page 2",
        "Synthetic page 5",
        "Synthetic page 6",
    ]


def test_a_page_range_as_a_list_selects_the_same_pages(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    run = contract(engine="none")
    result: OCRResult = run.call("ocr", write_pdf(tmp_path, "six.pdf", 6), page_range=[5, 0])
    assert [page.page_index for page in result.pages] == [0, 5]


def test_max_pages_keeps_the_first_pages(contract: Callable[..., Contract], tmp_path: Path) -> None:
    run = contract(engine="none")
    result: OCRResult = run.call("ocr", write_pdf(tmp_path, "five.pdf", 5), max_pages=2)
    assert result.page_count == 2
    assert [page.page_index for page in result.pages] == [0, 1]


def test_skip_cache_makes_the_server_run_an_identical_request_again(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    run = contract(engine="none")
    document = write_pdf(tmp_path, "doc.pdf", 2)
    run.call("ocr", document)
    run.call("ocr", document)
    assert server_stats(run.server)["cache_hits"] == 1
    fresh: OCRResult = run.call("ocr", document, skip_cache=True)
    assert server_stats(run.server)["cache_hits"] == 1
    assert [page.page_index for page in fresh.pages] == [0, 1]


def test_submit_then_wait_by_request_id_collects_the_result(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    run = contract(engine="none", latency=0.2)
    job = run.call("submit", write_pdf(tmp_path, "four.pdf", 4), page_range="2-3")
    # A bare request id, as after a restart: the page range is passed again for the indices.
    result: OCRResult = run.call("wait", job.request_id, page_range="2-3")
    assert result.request_id == job.request_id
    assert [page.page_index for page in result.pages] == [2, 3]


def test_check_reports_processing_while_the_job_runs(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    # Held far longer than a loaded machine takes between two calls; stopping the server
    # cancels the job, so the length costs nothing.
    run = contract(engine="none", latency=30.0)
    job = run.call("submit", write_pdf(tmp_path, "one.pdf", 1))
    assert run.call("check", job).status == "processing"


def test_tesseract_reads_the_example_receipt(mode: str, tesseract_server: LocalServer) -> None:
    run = Contract(mode=mode, server=tesseract_server)
    result: OCRResult = run.call("ocr", EXAMPLES / "receipt.png")
    assert result.page_count == 1
    assert result.pages[0].page_index == 0
    text = result.text.upper()
    assert "OBSERVATORY CAFE" in text
    assert "TOTAL" in text
    assert "17.70" in result.text
    assert result.pages[0].mean_confidence is not None
    assert result.versions.get("tesseract")
