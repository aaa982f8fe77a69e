"""Pure parts of the server, without a network: options, formats, limits, the job store."""

from __future__ import annotations

import asyncio
import os

import pytest

from datalab_ocr._models import OCRResult
from datalab_ocr.server.cli import parse_rate_limit
from datalab_ocr.server.config import ServerConfig
from datalab_ocr.server.formats import IMAGE, OFFICE, PDF, UnsupportedFileError, detect_kind
from datalab_ocr.server.jobs import JobStore
from datalab_ocr.server.limits import RateLimiter, retry_after_header
from datalab_ocr.server.options import (
    JobOptions,
    OptionsError,
    pages_past_end,
    parse_options,
    parse_page_range,
    select_pages,
)
from datalab_ocr.server.workers import WorkerCrashedError, WorkerPool


def test_page_range_is_zero_based_sorted_and_unique() -> None:
    assert parse_page_range("0,2-4") == (0, 2, 3, 4)
    assert parse_page_range(" 5, 1-2,2 ") == (1, 2, 5)


@pytest.mark.parametrize("text", ["a", "1-", "3-1", "-1", "1,,2", "1.5"])
def test_invalid_page_range_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_page_range(text)


def test_options_report_every_invalid_field_as_422_items() -> None:
    with pytest.raises(OptionsError) as caught:
        parse_options({"page_range": "x", "max_pages": "0", "skip_cache": "maybe"})
    locs = [item["loc"] for item in caught.value.detail]
    assert locs == [["body", "max_pages"], ["body", "page_range"], ["body", "skip_cache"]]
    assert all(set(item) == {"loc", "msg", "type"} for item in caught.value.detail)


def test_options_accept_form_strings() -> None:
    options = parse_options({"max_pages": "3", "skip_cache": "true", "langs": "en"})
    assert options == JobOptions(max_pages=3, page_range=None, skip_cache=True)


def test_page_range_overrides_max_pages_and_drops_pages_past_the_end() -> None:
    options = JobOptions(max_pages=1, page_range=(0, 2, 9))
    assert select_pages(options, 5) == [0, 2]
    assert select_pages(JobOptions(max_pages=2), 5) == [0, 1]
    assert select_pages(JobOptions(), 3) == [0, 1, 2]


def test_file_kind_comes_from_bytes_then_name_then_content_type() -> None:
    assert detect_kind(b"%PDF-1.7 ...", "x.png", "image/png") == PDF
    assert detect_kind(b"\x89PNG\r\n\x1a\n....", None, None) == IMAGE
    assert detect_kind(b"PK\x03\x04...", "slides.pptx", None) == OFFICE
    assert detect_kind(b"garbage", "broken.pdf", None) == PDF
    with pytest.raises(UnsupportedFileError, match="empty"):
        detect_kind(b"", "a.pdf", None)
    with pytest.raises(UnsupportedFileError, match="Unsupported"):
        detect_kind(b"hello", "notes.txt", "text/plain")


def test_rate_limiter_refuses_over_the_window_and_says_how_long_to_wait() -> None:
    limiter = RateLimiter(2, 10.0)
    assert limiter.acquire(0.0) is None
    assert limiter.acquire(1.0) is None
    assert limiter.acquire(2.0) == pytest.approx(8.0)
    assert limiter.acquire(10.5) is None
    assert retry_after_header(0.2) == "1"
    assert retry_after_header(7.1) == "8"


def test_rate_limit_option_parses_requests_per_window() -> None:
    assert parse_rate_limit("200/60") == (200, 60.0)
    assert parse_rate_limit("5") == (5, 60.0)


def test_results_expire_ttl_seconds_after_completion() -> None:
    store = JobStore(ttl=10.0, cache_size=2)
    job = store.create(now=0.0)
    assert store.get(job.request_id, now=500.0) is job  # processing jobs never expire
    store.complete(job, OCRResult(status="complete", success=True), now=500.0)
    assert store.get(job.request_id, now=509.0) is job
    assert store.get(job.request_id, now=510.0) is None
    assert store.get("unknown", now=0.0) is None


def test_config_rejects_unknown_engines() -> None:
    with pytest.raises(ValueError, match="engine"):
        ServerConfig(engine="surya")


def test_a_crashed_worker_fails_its_task_and_the_pool_recovers() -> None:
    pool = WorkerPool(1)

    async def scenario() -> int:
        with pytest.raises(WorkerCrashedError):
            await pool.run(os._exit, 3)
        return await pool.run(pow, 2, 5)

    try:
        assert asyncio.run(scenario()) == 32
    finally:
        pool.shutdown()


def test_pages_past_the_end_are_named_so_the_server_can_warn_as_the_client_does() -> None:
    options = JobOptions(page_range=(0, 2, 3, 4))
    assert select_pages(options, 3) == [0, 2]
    assert pages_past_end(options, 3) == [3, 4]
    assert pages_past_end(JobOptions(max_pages=9), 3) == []
