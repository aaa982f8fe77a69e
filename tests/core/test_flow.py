"""The job flow stepped by hand: no client, no network, no waiting."""

from __future__ import annotations

import random

import httpx
import pytest

from datalab_ocr import (
    JobTimeoutError,
    OCRPage,
    OCRResult,
    PollPolicy,
    RetryPolicy,
)
from datalab_ocr._flow import (
    FlowSettings,
    Send,
    Sleep,
    assign_page_indices,
    run_ocr,
)
from datalab_ocr._inputs import prepare_upload
from datalab_ocr._options import OCROptions
from datalab_ocr.testing import FakeClock

from .conftest import PDF_BYTES, complete, processing, status, submitted


def settings(clock: FakeClock, **polling: float) -> FlowSettings:
    return FlowSettings(
        base_url=httpx.URL("https://www.datalab.to"),
        retry=RetryPolicy(jitter=0),
        polling=PollPolicy(jitter=0, adaptive=False, **polling),
        clock=clock,
        rng=random.Random(0),
    )


def start(clock: FakeClock, **polling: float):  # type: ignore[no-untyped-def]
    upload = prepare_upload(PDF_BYTES, filename="doc.pdf")
    return run_ocr(settings(clock, **polling), upload, OCROptions(page_range=(1, 2)))


def test_the_first_step_is_the_upload() -> None:
    flow = start(FakeClock())

    step = next(flow)

    assert isinstance(step, Send)
    assert (step.method, step.url, step.action) == (
        "POST",
        "https://www.datalab.to/api/v1/ocr",
        "submit",
    )
    assert step.form == {"page_range": "1-2", "skip_cache": "false"}
    assert step.upload is not None and step.upload.filename == "doc.pdf"


def test_after_the_submit_it_waits_then_polls_the_check_url() -> None:
    clock = FakeClock()
    flow = start(clock, initial_delay=2)
    next(flow)

    wait = flow.send(submitted("j1"))
    clock.advance(2)
    poll = flow.send(None)

    assert wait == Sleep(2, "poll")
    assert isinstance(poll, Send)
    assert (poll.method, poll.url) == ("GET", "https://www.datalab.to/api/v1/ocr/j1")


def test_poll_gaps_grow_to_the_cap() -> None:
    clock = FakeClock()
    flow = start(clock, initial_delay=1, multiplier=2, max_delay=5)
    next(flow)
    step = flow.send(submitted())
    gaps = []
    for _ in range(5):
        assert isinstance(step, Sleep)
        gaps.append(step.seconds)
        clock.advance(step.seconds)
        assert isinstance(flow.send(None), Send)
        step = flow.send(processing())

    assert gaps == [1, 2, 4, 5, 5]


def test_the_flow_returns_the_result_with_page_indices() -> None:
    clock = FakeClock()
    flow = start(clock)
    next(flow)
    clock.advance(flow.send(submitted("j2")).seconds)
    flow.send(None)

    with pytest.raises(StopIteration) as done:
        flow.send(complete({"page": 2, "text_lines": []}, {"page": 3, "text_lines": []}))

    result = done.value.value
    assert isinstance(result, OCRResult)
    assert result.request_id == "j2"
    assert [page.page_index for page in result.pages] == [1, 2]


def test_a_retryable_answer_becomes_a_backoff_wait_then_the_same_request() -> None:
    flow = start(FakeClock())
    first = next(flow)

    wait = flow.send(status(503))
    again = flow.send(None)

    assert wait == Sleep(0.5, "retry submit")
    assert again == first


def test_a_transport_error_becomes_a_backoff_wait() -> None:
    flow = start(FakeClock())
    next(flow)

    assert isinstance(flow.send(httpx.ConnectError("refused")), Sleep)


def test_the_deadline_stops_polling_with_a_resumable_error() -> None:
    clock = FakeClock()
    flow = start(clock, initial_delay=30, max_delay=30, timeout=100)
    next(flow)
    step = flow.send(submitted("late"))
    with pytest.raises(JobTimeoutError) as caught:
        while True:
            if isinstance(step, Sleep):
                clock.advance(step.seconds)
                step = flow.send(None)
            else:
                step = flow.send(processing())

    assert caught.value.request_id == "late"
    assert clock.monotonic() == pytest.approx(1_100)


def test_a_retry_that_would_pass_the_deadline_is_not_waited_for() -> None:
    clock = FakeClock()
    flow = start(clock, timeout=10)
    next(flow)
    clock.advance(flow.send(submitted()).seconds)
    flow.send(None)
    clock.advance(8.9)

    with pytest.raises(Exception, match="HTTP 429"):
        flow.send(status(429, headers={"Retry-After": "60"}))


def pages(*numbers: int | None) -> list[OCRPage]:
    return [OCRPage(page=number) for number in numbers]


def test_page_numbers_in_the_original_document_are_kept() -> None:
    result = pages(3, 5)
    assign_page_indices(result, page_range=(2, 4), max_pages=None)
    assert [p.page_index for p in result] == [2, 4]


def test_page_numbers_counted_within_the_selection_are_mapped_to_it() -> None:
    result = pages(1, 2)
    assign_page_indices(result, page_range=(5, 9), max_pages=None)
    assert [p.page_index for p in result] == [5, 9]


def test_missing_page_numbers_fall_back_to_positions() -> None:
    result = pages(None, None, None)
    assign_page_indices(result, page_range=None, max_pages=None)
    assert [p.page_index for p in result] == [0, 1, 2]


def test_without_a_selection_page_numbers_are_one_based() -> None:
    result = pages(1, 2, 3)
    assign_page_indices(result, page_range=None, max_pages=None)
    assert [p.page_index for p in result] == [0, 1, 2]


def test_duplicate_page_numbers_fall_back_to_positions() -> None:
    result = pages(1, 1)
    assign_page_indices(result, page_range=None, max_pages=2)
    assert [p.page_index for p in result] == [0, 1]
