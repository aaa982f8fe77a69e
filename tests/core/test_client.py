"""The sync and async clients against a scripted service: one behaviour per test, both clients."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from datalab_ocr import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    DatalabClient,
    DatalabError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    OCRJob,
    PayloadTooLargeError,
    PermissionDeniedError,
    PollPolicy,
    RateLimitError,
    RequestValidationError,
    RetryPolicy,
    ServerError,
)

from .conftest import (
    API_KEY,
    BASE,
    PDF_BYTES,
    Harness,
    complete,
    file_part,
    form_fields,
    page,
    processing,
    status,
    submitted,
)


def test_ocr_submits_then_polls_until_complete(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [submitted("abc")]
    harness.service.polls = [processing(), processing(), complete(page(1, "Title", "Body"))]

    result = harness.call("ocr", pdf_file)

    assert result.request_id == "abc"
    assert result.pages[0].text == "Title\nBody"
    assert result.pages[0].page_index == 0
    assert result.versions == {"surya": "0.17.0"}
    assert [r.url.path for r in harness.service.gets] == ["/api/v1/ocr/abc"] * 3
    assert len(harness.clock.sleeps) == 3


def test_upload_carries_the_file_its_name_and_type(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [submitted()]
    harness.service.polls = [complete()]

    harness.call("ocr", pdf_file)

    field, filename, content = file_part(harness.service.posts[0])
    assert (field, filename, content) == ("file", "report.pdf", PDF_BYTES)
    assert b"Content-Type: application/pdf" in harness.service.posts[0].content


def test_options_are_sent_as_plain_form_strings(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [submitted()]
    harness.service.polls = [complete(page(3, "x"), page(5, "y"))]

    harness.call("ocr", pdf_file, page_range="4, 2-2", max_pages=3, skip_cache=True)

    assert form_fields(harness.service.posts[0]) == {
        "page_range": "2,4",
        "max_pages": "3",
        "skip_cache": "true",
    }


def test_every_request_carries_the_api_key(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [submitted()]
    harness.service.polls = [processing(), complete()]

    harness.call("ocr", pdf_file)

    assert [r.headers.get("x-api-key") for r in harness.service.requests] == [API_KEY] * 3


def test_langs_warns_and_is_sent_as_documented(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [submitted()]
    harness.service.polls = [complete()]

    with pytest.warns(DeprecationWarning, match="langs is deprecated"):
        harness.call("ocr", pdf_file, langs=["en", "de"])

    assert form_fields(harness.service.posts[0])["langs"] == "en,de"


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504, 529])
def test_retryable_status_on_submit_is_retried(harness: Harness, pdf_file: Path, code: int) -> None:
    harness.service.submits = [status(code), submitted()]
    harness.service.polls = [complete()]

    result = harness.call("ocr", pdf_file)

    assert result.request_id == "req-1"
    assert len(harness.service.posts) == 2


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504, 529])
def test_retryable_status_on_poll_is_retried(harness: Harness, pdf_file: Path, code: int) -> None:
    harness.service.submits = [submitted()]
    harness.service.polls = [status(code), complete()]

    harness.call("ocr", pdf_file)

    assert len(harness.service.gets) == 2


def test_retry_sends_the_whole_file_again(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [status(503), status(502), submitted()]
    harness.service.polls = [complete()]

    harness.call("ocr", pdf_file)

    assert [file_part(post)[2] for post in harness.service.posts] == [PDF_BYTES] * 3


def test_retry_after_in_seconds_is_honoured(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [status(429, headers={"Retry-After": "17"}), submitted()]
    harness.service.polls = [complete()]

    harness.call("ocr", pdf_file)

    assert harness.clock.sleeps[0] == 17


def test_retry_after_as_http_date_is_honoured(harness: Harness, pdf_file: Path) -> None:
    when = datetime.fromtimestamp(harness.clock.wall() + 42, tz=timezone.utc)
    retry_after = format_datetime(when, usegmt=True)
    harness.service.submits = [status(503, headers={"Retry-After": retry_after}), submitted()]
    harness.service.polls = [complete()]

    harness.call("ocr", pdf_file)

    assert harness.clock.sleeps[0] == pytest.approx(42, abs=1)


def test_backoff_grows_between_attempts(harness: Harness, pdf_file: Path) -> None:
    harness.client_kwargs["retry"] = RetryPolicy(initial_delay=1, multiplier=2, jitter=0)
    harness.service.submits = [status(500), status(500), status(500), submitted()]
    harness.service.polls = [complete()]

    harness.call("ocr", pdf_file)

    assert harness.clock.sleeps[:3] == [1, 2, 4]


def test_retries_stop_at_the_attempt_limit(harness: Harness, pdf_file: Path) -> None:
    harness.client_kwargs["retry"] = RetryPolicy(max_attempts=3)
    harness.service.submits = [status(500), status(502), status(503, "overloaded")]

    with pytest.raises(ServerError, match="overloaded") as caught:
        harness.call("ocr", pdf_file)

    assert caught.value.status_code == 503
    assert caught.value.filename == str(pdf_file)
    assert len(harness.service.posts) == 3


def test_rate_limit_still_refused_after_retries_is_a_rate_limit_error(
    harness: Harness, pdf_file: Path
) -> None:
    harness.client_kwargs["retry"] = RetryPolicy(max_attempts=2)
    harness.service.submits = [status(429), status(429, "Rate limit exceeded")]

    with pytest.raises(RateLimitError, match="Rate limit exceeded"):
        harness.call("ocr", pdf_file)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (413, PayloadTooLargeError),
        (422, RequestValidationError),
    ],
)
def test_non_retryable_status_fails_at_once(
    harness: Harness, pdf_file: Path, code: int, error: type[DatalabError]
) -> None:
    harness.service.submits = [status(code)]

    with pytest.raises(error) as caught:
        harness.call("ocr", pdf_file)

    assert len(harness.service.requests) == 1
    assert caught.value.filename == str(pdf_file)


def test_validation_error_lists_the_fields(harness: Harness, pdf_file: Path) -> None:
    detail = [{"loc": ["body", "max_pages"], "msg": "must be positive", "type": "value_error"}]
    harness.service.submits = [status(422, detail)]

    with pytest.raises(RequestValidationError, match=r"body\.max_pages: must be positive") as e:
        harness.call("ocr", pdf_file)

    assert e.value.detail == detail


def test_expired_request_id_while_polling_is_not_found(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [submitted("gone")]
    harness.service.polls = [processing(), status(404, "Not found")]

    with pytest.raises(NotFoundError) as caught:
        harness.call("ocr", pdf_file)

    assert caught.value.request_id == "gone"


def test_connection_errors_are_retried(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [httpx.ConnectError("refused"), submitted()]
    harness.service.polls = [httpx.ReadError("reset"), complete()]

    result = harness.call("ocr", pdf_file)

    assert result.pages


def test_connection_errors_end_in_a_connection_error(harness: Harness, pdf_file: Path) -> None:
    harness.client_kwargs["retry"] = RetryPolicy(max_attempts=2)
    harness.service.submits = [httpx.ConnectError("refused"), httpx.ConnectError("refused")]

    with pytest.raises(APIConnectionError, match="refused"):
        harness.call("ocr", pdf_file)


def test_read_timeouts_end_in_a_timeout_error(harness: Harness, pdf_file: Path) -> None:
    harness.client_kwargs["retry"] = RetryPolicy(max_attempts=2)
    harness.service.submits = [submitted()]
    harness.service.polls = [httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow")]

    with pytest.raises(APITimeoutError) as caught:
        harness.call("ocr", pdf_file)

    assert caught.value.request_id == "req-1"


def test_an_unsure_submit_is_not_repeated_when_told_not_to(
    harness: Harness, pdf_file: Path
) -> None:
    harness.client_kwargs["retry"] = RetryPolicy(retry_unsure_submits=False)
    harness.service.submits = [httpx.ReadError("connection lost after upload")]

    with pytest.raises(APIConnectionError):
        harness.call("ocr", pdf_file)

    assert len(harness.service.posts) == 1


def test_a_submit_that_never_connected_is_repeated_even_when_unsure_ones_are_not(
    harness: Harness, pdf_file: Path
) -> None:
    harness.client_kwargs["retry"] = RetryPolicy(retry_unsure_submits=False)
    harness.service.submits = [httpx.ConnectError("refused"), submitted()]
    harness.service.polls = [complete()]

    harness.call("ocr", pdf_file)

    assert len(harness.service.posts) == 2


def test_malformed_poll_body_is_retried(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [submitted()]
    harness.service.polls = [httpx.Response(200, content=b'{"status": "compl'), complete()]

    assert harness.call("ocr", pdf_file).pages


def test_malformed_body_every_time_is_a_response_error(harness: Harness, pdf_file: Path) -> None:
    harness.client_kwargs["retry"] = RetryPolicy(max_attempts=2)
    harness.service.submits = [submitted()]
    harness.service.polls = [httpx.Response(200, text="<html>oops</html>")] * 2

    with pytest.raises(APIResponseError, match="not the expected JSON"):
        harness.call("ocr", pdf_file)


def test_complete_with_success_false_is_a_job_failure(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [submitted("r9")]
    harness.service.polls = [complete(success=False, error="Page rate limit exceeded", pages=None)]

    with pytest.raises(JobFailedError, match="Page rate limit exceeded") as caught:
        harness.call("ocr", pdf_file)

    assert caught.value.request_id == "r9"
    assert caught.value.filename == str(pdf_file)


def test_unknown_status_with_success_false_is_a_job_failure(
    harness: Harness, pdf_file: Path
) -> None:
    harness.service.submits = [submitted()]
    harness.service.polls = [
        httpx.Response(200, json={"status": "aborted", "success": False, "error": "boom"})
    ]

    with pytest.raises(JobFailedError, match="boom"):
        harness.call("ocr", pdf_file)


def test_status_failed_is_a_job_failure(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [submitted()]
    harness.service.polls = [httpx.Response(200, json={"status": "failed", "error": "bad pdf"})]

    with pytest.raises(JobFailedError, match="bad pdf"):
        harness.call("ocr", pdf_file)


def test_unknown_status_without_failure_keeps_polling(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [submitted()]
    harness.service.polls = [httpx.Response(200, json={"status": "queued_for_gpu"}), complete()]

    assert harness.call("ocr", pdf_file).pages


def test_submit_answer_with_success_false_is_a_job_failure(
    harness: Harness, pdf_file: Path
) -> None:
    harness.service.submits = [
        httpx.Response(200, json={"success": False, "error": "Unsupported file"})
    ]

    with pytest.raises(JobFailedError, match="Unsupported file"):
        harness.call("ocr", pdf_file)

    assert harness.service.gets == []


def test_deadline_ends_in_a_timeout_with_the_request_id(harness: Harness, pdf_file: Path) -> None:
    harness.client_kwargs["polling"] = PollPolicy(
        initial_delay=10, max_delay=10, timeout=60, adaptive=False
    )
    harness.service.submits = [submitted("slow-1")]
    harness.service.polls = [processing()] * 10

    with pytest.raises(JobTimeoutError) as caught:
        harness.call("ocr", pdf_file)

    assert caught.value.request_id == "slow-1"
    assert caught.value.check_url == f"{BASE}/api/v1/ocr/slow-1"
    assert sum(harness.clock.sleeps) == pytest.approx(60)


def test_foreign_check_url_is_replaced_by_the_base_url(
    harness: Harness, pdf_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness.service.submits = [submitted("r1", check_url="https://evil.example/api/v1/ocr/r1")]
    harness.service.polls = [complete()]

    with caplog.at_level(logging.WARNING, logger="datalab_ocr"):
        harness.call("ocr", pdf_file)

    assert [str(r.url) for r in harness.service.gets] == [f"{BASE}/api/v1/ocr/r1"]
    assert "another origin" in caplog.text


def test_check_url_on_another_port_counts_as_foreign(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [submitted("r1", check_url="https://www.datalab.to:8443/x/r1")]
    harness.service.polls = [complete()]

    harness.call("ocr", pdf_file)

    assert harness.service.gets[0].url.port is None


def test_submit_returns_a_job_handle_without_polling(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [submitted("h1")]

    job = harness.call("submit", pdf_file, page_range="1-2")

    assert job == OCRJob(
        request_id="h1",
        check_url=f"{BASE}/api/v1/ocr/h1",
        filename=str(pdf_file),
        page_range=(1, 2),
        max_pages=None,
        expected_pages=2,
    )
    assert harness.service.gets == []


def test_wait_resumes_a_job_by_request_id_checking_at_once(harness: Harness) -> None:
    harness.service.polls = [complete(page(3, "c"), page(4, "d"))]

    result = harness.call("wait", "resumed-7", page_range="2-3")

    assert [p.page_index for p in result.pages] == [2, 3]
    assert result.request_id == "resumed-7"
    assert harness.clock.sleeps == []
    assert harness.service.gets[0].url == f"{BASE}/api/v1/ocr/resumed-7"


def test_check_reports_a_running_job(harness: Harness) -> None:
    harness.service.polls = [processing()]

    assert harness.call("check", "r5").status == "processing"


def test_bytes_with_a_file_name_are_uploaded(harness: Harness) -> None:
    harness.service.submits = [submitted()]
    harness.service.polls = [complete()]

    harness.call("ocr", PDF_BYTES, filename="memo.pdf")

    assert file_part(harness.service.posts[0])[1:] == ("memo.pdf", PDF_BYTES)


def test_bad_input_is_refused_before_any_request(harness: Harness, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdf"
    empty.touch()

    with pytest.raises(DatalabError, match="empty"):
        harness.call("ocr", empty)

    assert harness.service.requests == []


def test_bad_option_is_refused_before_any_request(harness: Harness, pdf_file: Path) -> None:
    with pytest.raises(ValueError, match="runs backwards"):
        harness.call("ocr", pdf_file, page_range="4-2")

    assert harness.service.requests == []


def test_a_timeout_given_to_wait_is_the_deadline_the_error_names(harness: Harness) -> None:
    harness.client_kwargs["polling"] = PollPolicy(initial_delay=5, max_delay=5, adaptive=False)
    harness.service.polls = [processing()] * 10

    with pytest.raises(JobTimeoutError, match="in the 20 s its deadline left it"):
        harness.call("wait", "r7", timeout=20)

    assert sum(harness.clock.sleeps) == pytest.approx(20)


@pytest.mark.parametrize("code", [408, 500, 502, 504])
def test_an_unsure_status_on_submit_is_not_repeated_when_told_not_to(
    harness: Harness, pdf_file: Path, code: int
) -> None:
    harness.client_kwargs["retry"] = RetryPolicy(retry_unsure_submits=False)
    harness.service.submits = [status(code)]

    with pytest.raises(ServerError):
        harness.call("ocr", pdf_file)

    assert len(harness.service.posts) == 1


@pytest.mark.parametrize("code", [429, 503, 529])
def test_a_refusal_on_submit_is_retried_even_when_unsure_ones_are_not(
    harness: Harness, pdf_file: Path, code: int
) -> None:
    harness.client_kwargs["retry"] = RetryPolicy(retry_unsure_submits=False)
    harness.service.submits = [status(code), submitted()]
    harness.service.polls = [complete()]

    harness.call("ocr", pdf_file)

    assert len(harness.service.posts) == 2


def test_a_redirect_is_never_followed_so_the_key_stays_home(pdf_file: Path) -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("x-api-key")))
        return httpx.Response(307, headers={"Location": "https://evil.example.com/api/v1/ocr"})

    http = httpx.Client(transport=httpx.MockTransport(handler), follow_redirects=True)
    with (
        DatalabClient(api_key=API_KEY, http_client=http, cache=False) as client,
        pytest.raises(DatalabError, match="HTTP 307"),
    ):
        client.ocr(pdf_file)

    assert seen == [("www.datalab.to", API_KEY)]


def test_an_undecodable_answer_is_retried(harness: Harness, pdf_file: Path) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        # A streamed body is decoded only when the client reads it, as off the wire.
        return httpx.Response(
            200,
            headers={"Content-Encoding": "deflate"},
            stream=httpx.ByteStream(b"not deflate at all"),
        )

    harness.service.submits = [submitted()]
    harness.service.polls = [broken, complete()]

    assert harness.call("ocr", pdf_file).pages


def test_one_last_look_at_the_deadline_catches_a_job_that_just_ended(
    harness: Harness, pdf_file: Path
) -> None:
    harness.client_kwargs["polling"] = PollPolicy(
        initial_delay=10, multiplier=1, max_delay=10, jitter=0, timeout=25, adaptive=False
    )
    harness.service.submits = [submitted()]
    harness.service.polls = [processing(), processing(), complete()]

    result = harness.call("ocr", pdf_file)

    assert result.pages
    assert harness.clock.sleeps == [10, 10, 5]
