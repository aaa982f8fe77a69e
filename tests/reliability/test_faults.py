"""Injected faults, on submit and on poll, through both clients over real sockets.

Transient faults are survived and every page arrives exactly once; permanent ones end in the
documented error, naming the file and (once there is one) the request id; nothing retries
without bound: every test counts the requests the server saw.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from datalab_ocr import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    DatalabError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    OCRResult,
    PayloadTooLargeError,
    PermissionDeniedError,
    PollPolicy,
    RateLimitError,
    RequestValidationError,
    RetryPolicy,
    ServerError,
)

from .conftest import RETRY, Runner
from .fault_server import (
    DROP,
    MALFORMED,
    TRUNCATE,
    Chaos,
    Fault,
    FaultServer,
    JobPlan,
    page_text,
    slow,
    status,
)

TRANSIENT = [
    status(408),
    status(429),
    status(429, retry_after="0"),
    status(500),
    status(502),
    status(502, html=True),
    status(503),
    status(503, html=True),
    status(504),
    status(529),
    status(529, html=True),
    DROP,
    TRUNCATE,
    MALFORMED,
    slow(),
]

PAGES = 3


def labels(faults: list[Fault]) -> list[str]:
    return [fault.label for fault in faults]


def expect_pages(result: OCRResult, name: str = "report.pdf") -> None:
    """Each page of the document, exactly once, in order, with its original index."""
    assert [page.text for page in result.pages] == [page_text(name, i) for i in range(PAGES)]
    assert [page.page_index for page in result.pages] == list(range(PAGES))


@pytest.fixture(autouse=True)
def _three_pages(server: FaultServer) -> None:
    server.plans["report.pdf"] = JobPlan(pages=PAGES)


# Transient faults are survived.


@pytest.mark.parametrize("fault", TRANSIENT, ids=labels(TRANSIENT))
def test_a_transient_fault_on_submit_is_survived(
    runner: Runner, server: FaultServer, pdf: Path, fault: Fault
) -> None:
    server.submit_faults[0] = fault

    result = runner.call("ocr", pdf)

    expect_pages(result)
    assert len(server.seen("POST")) == 2
    assert len(server.creations) == 1  # the fault came before the job was made
    assert len(server.seen("GET")) == 2  # one "processing", one "complete"


@pytest.mark.parametrize("fault", TRANSIENT, ids=labels(TRANSIENT))
def test_a_transient_fault_on_poll_is_survived(
    runner: Runner, server: FaultServer, pdf: Path, fault: Fault
) -> None:
    server.poll_faults[0] = fault

    result = runner.call("ocr", pdf)

    expect_pages(result)
    assert len(server.seen("POST")) == 1
    assert len(server.seen("GET")) == 3


def test_several_faults_in_a_row_are_survived_within_the_attempt_limit(
    runner: Runner, server: FaultServer, pdf: Path
) -> None:
    faults = [DROP, status(503), TRUNCATE, status(429), MALFORMED]  # five: one short of six
    server.submit_faults.update(enumerate(faults))
    server.id_faults["job-00000"] = list(faults)

    result = runner.call("ocr", pdf)

    expect_pages(result)
    assert len(server.seen("POST")) == RETRY.max_attempts
    assert len(server.seen("GET")) == len(faults) + 2


@pytest.mark.parametrize("fault", [status(429), status(503)], ids=["429", "503"])
def test_retry_after_is_honoured(
    runner: Runner, server: FaultServer, pdf: Path, fault: Fault
) -> None:
    server.submit_faults[0] = Fault("status", fault.status, retry_after="0.3")

    runner.call("ocr", pdf)

    first, second = server.seen("POST")
    assert second.at - first.at >= 0.3


# The unsure submit: the service made the job, the answer was lost.

LOST_ANSWERS = [
    Fault("drop", after_work=True),
    Fault("truncate", after_work=True),
    slow(after_work=True),
    status(504, after_work=True),
]


@pytest.mark.parametrize("fault", LOST_ANSWERS, ids=labels(LOST_ANSWERS))
def test_a_lost_submit_answer_is_sent_again_and_the_pages_still_arrive_once(
    runner: Runner, server: FaultServer, pdf: Path, fault: Fault
) -> None:
    server.submit_faults[0] = fault

    result = runner.call("ocr", pdf)

    expect_pages(result)
    # The documented cost of retrying an unsure submit: a second job on the service.
    _first, second = server.creations_by_file()["report.pdf"]
    assert result.request_id == second.request_id
    assert {r.request_id for r in server.seen("GET")} == {second.request_id}


@pytest.mark.parametrize("fault", LOST_ANSWERS[:3], ids=labels(LOST_ANSWERS[:3]))
def test_an_unsure_submit_is_not_repeated_when_told_not_to(
    runner: Runner, server: FaultServer, pdf: Path, fault: Fault
) -> None:
    runner.client_kwargs["retry"] = RetryPolicy(
        initial_delay=0.01, max_delay=0.05, retry_unsure_submits=False
    )
    server.submit_faults[0] = fault

    with pytest.raises(APIConnectionError) as caught:
        runner.call("ocr", pdf)

    assert caught.value.filename == str(pdf)
    assert len(server.seen("POST")) == 1
    assert len(server.creations) == 1


# Permanent faults end in the documented error, at once.

PERMANENT_SUBMIT: list[tuple[int, type[APIStatusError]]] = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (413, PayloadTooLargeError),
    (422, RequestValidationError),
]


@pytest.mark.parametrize(
    ("code", "error"), PERMANENT_SUBMIT, ids=[str(c) for c, _ in PERMANENT_SUBMIT]
)
def test_a_permanent_status_on_submit_fails_at_once_naming_the_file(
    runner: Runner, server: FaultServer, pdf: Path, code: int, error: type[APIStatusError]
) -> None:
    server.submit_faults[0] = status(code)

    with pytest.raises(error) as caught:
        runner.call("ocr", pdf)

    assert (caught.value.status_code, caught.value.filename) == (code, str(pdf))
    assert str(pdf) in str(caught.value)
    assert len(server.seen("POST")) == 1
    assert server.seen("GET") == []


PERMANENT_POLL = [*PERMANENT_SUBMIT[:3], (404, NotFoundError), (422, RequestValidationError)]


@pytest.mark.parametrize(("code", "error"), PERMANENT_POLL, ids=[str(c) for c, _ in PERMANENT_POLL])
def test_a_permanent_status_on_poll_fails_at_once_naming_file_and_request_id(
    runner: Runner, server: FaultServer, pdf: Path, code: int, error: type[APIStatusError]
) -> None:
    server.poll_faults[0] = status(code)

    with pytest.raises(error) as caught:
        runner.call("ocr", pdf)

    assert (caught.value.filename, caught.value.request_id) == (str(pdf), "job-00000")
    assert "job-00000" in str(caught.value)
    assert len(server.seen("GET")) == 1


@pytest.mark.parametrize(
    "outcome", ["success_false", "status_failed"], ids=["success-false", "status-failed"]
)
def test_a_failed_job_is_a_job_failure_naming_file_and_request_id(
    runner: Runner, server: FaultServer, pdf: Path, outcome: str
) -> None:
    server.plans["report.pdf"] = JobPlan(outcome=outcome)  # type: ignore[arg-type]

    with pytest.raises(JobFailedError) as caught:
        runner.call("ocr", pdf)

    assert (caught.value.filename, caught.value.request_id) == (str(pdf), "job-00000")
    assert len(server.seen("POST")) == 1
    assert len(server.seen("GET")) == 2  # processing, then the failure: no retry


def test_a_request_id_that_expires_while_polled_is_not_found(
    runner: Runner, server: FaultServer, pdf: Path
) -> None:
    server.plans["report.pdf"] = JobPlan(outcome="expire", processing_polls=2)

    with pytest.raises(NotFoundError) as caught:
        runner.call("ocr", pdf)

    assert (caught.value.filename, caught.value.request_id) == (str(pdf), "job-00000")
    assert "one hour" in str(caught.value)
    assert len(server.seen("GET")) == 3


# Retries are bounded.

PERSISTENT: list[tuple[Fault, type[DatalabError]]] = [
    (status(429), RateLimitError),
    (status(503), ServerError),
    (status(529, html=True), ServerError),
    (DROP, APIConnectionError),
    (TRUNCATE, APIConnectionError),
    (MALFORMED, APIResponseError),
    (slow(), APITimeoutError),
]
BOUNDED = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.05)


@pytest.mark.parametrize(("fault", "error"), PERSISTENT, ids=labels([f for f, _ in PERSISTENT]))
def test_a_fault_that_never_clears_on_submit_ends_after_the_attempt_limit(
    runner: Runner, server: FaultServer, pdf: Path, fault: Fault, error: type[DatalabError]
) -> None:
    runner.client_kwargs["retry"] = BOUNDED
    server.chaos = Chaos(rate=1.0, faults=[fault])

    with pytest.raises(error) as caught:
        runner.call("ocr", pdf)

    assert caught.value.filename == str(pdf)
    assert len(server.seen("POST")) == BOUNDED.max_attempts


@pytest.mark.parametrize(("fault", "error"), PERSISTENT, ids=labels([f for f, _ in PERSISTENT]))
def test_a_fault_that_never_clears_on_poll_ends_after_the_attempt_limit(
    runner: Runner, server: FaultServer, pdf: Path, fault: Fault, error: type[DatalabError]
) -> None:
    runner.client_kwargs["retry"] = BOUNDED
    server.id_faults["job-00000"] = [fault] * 20

    with pytest.raises(error) as caught:
        runner.call("ocr", pdf)

    assert (caught.value.filename, caught.value.request_id) == (str(pdf), "job-00000")
    assert len(server.seen("GET")) == BOUNDED.max_attempts


# The job deadline is not an HTTP timeout.


def test_the_job_deadline_ends_a_job_that_never_completes_with_a_resumable_error(
    runner: Runner, server: FaultServer, pdf: Path
) -> None:
    runner.client_kwargs["polling"] = PollPolicy(
        initial_delay=0.05, max_delay=0.05, timeout=0.6, adaptive=False
    )
    server.plans["report.pdf"] = JobPlan(processing_polls=10**6)
    started = time.monotonic()

    with pytest.raises(JobTimeoutError) as caught:
        runner.call("ocr", pdf)

    assert time.monotonic() - started < 5.0  # the 0.6 s deadline, with slack for a busy CI
    assert (caught.value.request_id, caught.value.filename) == ("job-00000", str(pdf))
    assert caught.value.check_url == f"{server.base_url}/api/v1/ocr/job-00000"
    assert 2 <= len(server.seen("GET")) <= 0.6 / 0.05 + 2


def test_slow_polls_count_against_the_deadline_not_beyond_it(
    runner: Runner, server: FaultServer, pdf: Path
) -> None:
    # Every poll hangs past the 0.3 s read timeout; the 1 s deadline still ends the job.
    runner.client_kwargs["polling"] = PollPolicy(
        initial_delay=0.01, max_delay=0.05, timeout=1.0, adaptive=False
    )
    runner.client_kwargs["retry"] = RetryPolicy(max_attempts=100, initial_delay=0.01)
    server.id_faults["job-00000"] = [slow(0.5)] * 100
    started = time.monotonic()

    with pytest.raises((JobTimeoutError, APITimeoutError)) as caught:
        runner.call("ocr", pdf)

    assert time.monotonic() - started < 1.0 + 0.3 + 0.5
    assert caught.value.request_id == "job-00000"
    assert len(server.seen("GET")) <= 5


# Resuming a job after the process that submitted it is gone.


def test_a_job_submitted_by_one_client_is_collected_by_another_through_faults(
    runner: Runner, server: FaultServer, pdf: Path
) -> None:
    job = runner.call("submit", pdf, page_range="0-2")
    server.id_faults[job.request_id] = [DROP, status(503)]

    result = runner.call("wait", job.request_id, page_range="0-2")

    expect_pages(result)
    assert len(server.seen("POST")) == 1
    assert result.request_id == job.request_id
