"""Batches through both clients: every file accounted for, nothing paid twice."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from datalab_ocr import (
    AsyncDatalabClient,
    BatchError,
    BatchItem,
    BatchResult,
    DatalabClient,
    InvalidInputError,
    JobFailedError,
    PollPolicy,
    ResultCache,
    SystemClock,
)
from datalab_ocr.testing import FakeClock

from .conftest import API_KEY, PDF_BYTES, file_part


@dataclass
class JobService:
    """A fake service with real job state: each submit starts a job named after its file.

    A job answers ``processing`` to its first ``polls_needed`` checks, then completes with one
    page whose text is the file name; files named in ``failing`` complete with success false,
    ids in ``expired`` answer 404. Thread-safe, so the sync batch's threads can share it.
    """

    polls_needed: int = 1
    failing: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)
    never_complete: bool = False
    jobs: dict[str, str] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)
    submits: list[str] = field(default_factory=list)
    polls: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    after_submit: Callable[[], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self.lock:
            if request.method == "POST":
                return self._submit(request)
            return self._poll(request.url.path.rsplit("/", 1)[-1])

    def _submit(self, request: httpx.Request) -> httpx.Response:
        filename = file_part(request)[1]
        request_id = f"job-{len(self.submits)}"
        self.submits.append(filename)
        self.jobs[request_id] = filename
        self.checks[request_id] = 0
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.after_submit is not None:
            self.after_submit()
        return httpx.Response(200, json={"request_id": request_id, "success": True})

    def _poll(self, request_id: str) -> httpx.Response:
        self.polls.append(request_id)
        if request_id in self.expired or request_id not in self.jobs:
            return httpx.Response(404, json={"detail": "Not found"})
        self.checks[request_id] += 1
        if self.never_complete or self.checks[request_id] <= self.polls_needed:
            return httpx.Response(200, json={"status": "processing"})
        self.in_flight -= 1
        filename = self.jobs[request_id]
        if filename in self.failing:
            body: dict[str, Any] = {"status": "complete", "success": False, "error": "bad scan"}
        else:
            body = {
                "status": "complete",
                "success": True,
                "page_count": 1,
                "pages": [{"page": 1, "text_lines": [{"text": filename}]}],
            }
        return httpx.Response(200, json=body)


@dataclass
class Batch:
    """Runs a batch method on the sync or async client against a JobService."""

    mode: str
    service: JobService = field(default_factory=JobService)
    clock: FakeClock = field(default_factory=FakeClock)

    def client_options(self, **extra: Any) -> dict[str, Any]:
        return {"api_key": API_KEY, "clock": self.clock, "cache": False, "seed": 1, **extra}

    def run(
        self, method: str, files: list[Any], client: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        options = self.client_options(**(client or {}))
        transport = httpx.MockTransport(self.service)
        if self.mode == "sync":
            with DatalabClient(http_client=httpx.Client(transport=transport), **options) as c:
                outcome = getattr(c, method)(files, **kwargs)
                return list(outcome) if method == "iter_batch" else outcome

        async def go() -> Any:
            http = httpx.AsyncClient(transport=transport)
            async with AsyncDatalabClient(http_client=http, **options) as c:
                if method == "iter_batch":
                    return [item async for item in c.iter_batch(files, **kwargs)]
                return await getattr(c, method)(files, **kwargs)

        return asyncio.run(go())


@pytest.fixture(params=["sync", "async"])
def batch(request: pytest.FixtureRequest) -> Batch:
    return Batch(mode=request.param)


def make_files(folder: Path, count: int) -> list[Path]:
    files = []
    for number in range(count):
        path = folder / f"doc{number:02d}.pdf"
        path.write_bytes(PDF_BYTES + str(number).encode())
        files.append(path)
    return files


def texts(result: BatchResult) -> list[str]:
    return [r.pages[0].text for r in result.results]


def test_every_file_comes_back_in_input_order(batch: Batch, tmp_path: Path) -> None:
    files = make_files(tmp_path, 12)

    result = batch.run("ocr_batch", files, concurrency=4)

    assert texts(result) == [f.name for f in files]
    assert [item.index for item in result.items] == list(range(12))
    assert sorted(batch.service.submits) == [f.name for f in files]


def test_concurrency_bounds_the_jobs_in_flight(batch: Batch, tmp_path: Path) -> None:
    batch.service.polls_needed = 3

    batch.run("ocr_batch", make_files(tmp_path, 10), concurrency=3)

    assert 1 <= batch.service.max_in_flight <= 3


def test_collect_returns_failures_with_file_and_request_id_beside_successes(
    batch: Batch, tmp_path: Path
) -> None:
    files = make_files(tmp_path, 4)
    batch.service.failing = {"doc02.pdf"}

    result = batch.run("ocr_batch", files, errors="collect")

    assert texts(result) == ["doc00.pdf", "doc01.pdf", "doc03.pdf"]
    [failure] = result.failures
    assert failure.source == str(files[2])
    assert isinstance(failure.error, JobFailedError)
    assert failure.error.filename == str(files[2])
    assert failure.request_id is not None
    assert failure.request_id.startswith("job-")


def test_skip_logs_failures_and_returns_the_rest(
    batch: Batch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    batch.service.failing = {"doc01.pdf"}

    with caplog.at_level(logging.WARNING, logger="datalab_ocr"):
        result = batch.run("ocr_batch", make_files(tmp_path, 3), errors="skip")

    assert texts(result) == ["doc00.pdf", "doc02.pdf"]
    assert result.failures == []
    assert "doc01.pdf" in caplog.text
    assert "bad scan" in caplog.text


def test_raise_stops_at_the_first_failure_keeping_what_succeeded(
    batch: Batch, tmp_path: Path
) -> None:
    batch.service.failing = {"doc00.pdf"}

    with pytest.raises(BatchError) as caught:
        batch.run("ocr_batch", make_files(tmp_path, 1), concurrency=1)

    assert isinstance(caught.value.__cause__, JobFailedError)
    assert caught.value.filename is not None
    assert caught.value.filename.endswith("doc00.pdf")
    assert caught.value.completed == []


def test_raise_keeps_the_successes_before_the_failure(batch: Batch, tmp_path: Path) -> None:
    files = make_files(tmp_path, 3)
    batch.service.failing = {"doc02.pdf"}

    with pytest.raises(BatchError) as caught:
        batch.run("ocr_batch", files, concurrency=1)

    assert [item.source for item in caught.value.completed] == [str(f) for f in files[:2]]


def test_bad_input_stops_a_raising_batch_before_anything_is_uploaded(
    batch: Batch, tmp_path: Path
) -> None:
    files = make_files(tmp_path, 3)
    (tmp_path / "empty.pdf").touch()

    with pytest.raises(BatchError, match="empty"):
        batch.run("ocr_batch", [*files, tmp_path / "empty.pdf"])

    assert batch.service.submits == []


def test_bad_input_is_recorded_and_the_rest_goes_on_when_collecting(
    batch: Batch, tmp_path: Path
) -> None:
    files = make_files(tmp_path, 2)
    missing = tmp_path / "missing.pdf"

    result = batch.run("ocr_batch", [files[0], missing, files[1]], errors="collect")

    assert texts(result) == ["doc00.pdf", "doc01.pdf"]
    [failure] = result.failures
    assert (failure.index, failure.source) == (1, str(missing))
    assert isinstance(failure.error, InvalidInputError)


def test_items_stream_in_completion_order(batch: Batch, tmp_path: Path) -> None:
    files = make_files(tmp_path, 6)

    items: list[BatchItem] = batch.run("iter_batch", files, concurrency=6)

    assert sorted(item.index for item in items) == list(range(6))
    assert all(item.ok and item.result is not None for item in items)


def test_a_second_run_is_answered_from_the_cache(batch: Batch, tmp_path: Path) -> None:
    files = make_files(tmp_path, 5)
    cache = ResultCache(tmp_path / "cache.sqlite3")

    first = batch.run("ocr_batch", files, client={"cache": cache})
    requests_after_first = len(batch.service.submits) + len(batch.service.polls)
    second = batch.run("ocr_batch", files, client={"cache": cache})

    assert texts(second) == texts(first)
    assert all(item.from_cache for item in second.items)
    assert len(batch.service.submits) + len(batch.service.polls) == requests_after_first


def test_skip_cache_submits_again_despite_a_cached_result(batch: Batch, tmp_path: Path) -> None:
    files = make_files(tmp_path, 2)
    cache = ResultCache(tmp_path / "cache.sqlite3")

    batch.run("ocr_batch", files, client={"cache": cache})
    batch.run("ocr_batch", files, client={"cache": cache}, skip_cache=True)

    assert len(batch.service.submits) == 4


def test_an_interrupted_batch_re_polls_its_jobs_instead_of_submitting_again(
    batch: Batch, tmp_path: Path
) -> None:
    files = make_files(tmp_path, 3)
    cache = ResultCache(tmp_path / "cache.sqlite3")
    batch.service.never_complete = True
    short = {"cache": cache, "polling": PollPolicy(timeout=30, adaptive=False)}

    interrupted = batch.run("ocr_batch", files, client=short, errors="collect", concurrency=1)
    assert len(interrupted.failures) == 3
    batch.service.never_complete = False
    resumed = batch.run("ocr_batch", files, client={"cache": cache})

    assert texts(resumed) == [f.name for f in files]
    assert len(batch.service.submits) == 3


def test_an_expired_job_from_an_earlier_run_is_submitted_again(
    batch: Batch, tmp_path: Path
) -> None:
    files = make_files(tmp_path, 1)
    cache = ResultCache(tmp_path / "cache.sqlite3")
    batch.service.never_complete = True
    short = {"cache": cache, "polling": PollPolicy(timeout=30, adaptive=False)}
    batch.run("ocr_batch", files, client=short, errors="collect")
    batch.service.never_complete = False
    batch.service.expired = {"job-0"}

    result = batch.run("ocr_batch", files, client={"cache": cache})

    assert texts(result) == ["doc00.pdf"]
    assert batch.service.submits == ["doc00.pdf", "doc00.pdf"]


def test_a_failed_job_is_not_resumed_or_cached(batch: Batch, tmp_path: Path) -> None:
    files = make_files(tmp_path, 1)
    cache = ResultCache(tmp_path / "cache.sqlite3")
    batch.service.failing = {"doc00.pdf"}
    batch.run("ocr_batch", files, client={"cache": cache}, errors="collect")
    batch.service.failing = set()

    result = batch.run("ocr_batch", files, client={"cache": cache})

    assert texts(result) == ["doc00.pdf"]
    assert len(batch.service.submits) == 2


def test_an_unknown_error_policy_is_refused(batch: Batch, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="errors must be one of"):
        batch.run("ocr_batch", make_files(tmp_path, 1), errors="ignore")


def test_breaking_out_of_a_sync_batch_stops_its_workers(tmp_path: Path) -> None:
    service = JobService(polls_needed=2)
    files = make_files(tmp_path, 20)
    http = httpx.Client(transport=httpx.MockTransport(service))
    with DatalabClient(api_key=API_KEY, http_client=http, clock=FakeClock(), cache=False) as c:
        for _ in c.iter_batch(files, concurrency=2):
            break

    assert len(service.submits) < 20


def test_jobs_submitted_as_a_batch_is_abandoned_are_recorded_for_resuming(
    tmp_path: Path,
) -> None:
    slow = make_files(tmp_path, 2)
    refused = tmp_path / "refused.pdf"
    refused.write_bytes(PDF_BYTES + b"refused")
    cache = ResultCache(tmp_path / "cache.sqlite3")
    uploading = threading.Semaphore(0)
    release = threading.Event()
    service = JobService()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            if file_part(request)[1] == "refused.pdf":
                # Refused once both slow uploads are under way: the batch stops mid-upload.
                for _ in slow:
                    assert uploading.acquire(timeout=10)
                return httpx.Response(400, json={"detail": "unsupported"})
            uploading.release()
            release.wait(timeout=10)  # the uploads end only after the batch was abandoned
        return service(request)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = DatalabClient(api_key=API_KEY, http_client=http, clock=FakeClock(), cache=cache)
    outcome: list[BaseException] = []

    def consume() -> None:
        try:
            list(client.iter_batch([*slow, refused], concurrency=3))
        except BatchError as error:
            outcome.append(error)

    consumer = threading.Thread(target=consume)
    consumer.start()
    consumer.join(timeout=10)  # the refused file stops the batch
    assert outcome, "the batch should have stopped at the refused file"
    release.set()

    recorded: list[Path] = []
    for _ in range(200):  # the workers finish their sends in the background
        recorded = [f for f in slow if cache.pending_job(_key(client, f)) is not None]
        if len(recorded) == 2:
            break
        threading.Event().wait(0.05)
    assert recorded == slow
    client.close()


def _key(client: DatalabClient, path: Path) -> str:
    from datalab_ocr._batch import cache_key
    from datalab_ocr._inputs import prepare_upload
    from datalab_ocr._options import OCROptions

    return cache_key(client._settings, prepare_upload(path), OCROptions())


def test_a_file_that_vanishes_mid_batch_is_that_files_failure(batch: Batch, tmp_path: Path) -> None:
    files = make_files(tmp_path, 3)
    batch.service.after_submit = lambda: files[1].unlink(missing_ok=True)

    result = batch.run("ocr_batch", files, concurrency=1, errors="collect")

    assert texts(result) == ["doc00.pdf", "doc02.pdf"]
    [failure] = result.failures
    assert isinstance(failure.error, InvalidInputError)
    assert failure.source == str(files[1])


def test_a_result_without_pages_is_not_kept_in_the_cache(tmp_path: Path) -> None:
    path = make_files(tmp_path, 1)[0]
    cache = ResultCache(tmp_path / "cache.sqlite3")
    answers = [{"status": "complete", "success": True, "pages": []}]
    answers.append({"status": "complete", "success": True, "pages": [{"text_lines": []}]})
    polls = iter(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"request_id": "r", "success": True})
        return httpx.Response(200, json=next(polls))

    for expected_pages in (0, 1):
        http = httpx.Client(transport=httpx.MockTransport(handler))
        with DatalabClient(api_key=API_KEY, http_client=http, clock=FakeClock(), cache=cache) as c:
            assert len(c.ocr(path).pages) == expected_pages


def test_the_same_content_twice_in_a_batch_is_paid_for_once(batch: Batch, tmp_path: Path) -> None:
    [original] = make_files(tmp_path, 1)
    copy = tmp_path / "copy-of-doc00.pdf"
    copy.write_bytes(original.read_bytes())
    cache = ResultCache(tmp_path / "cache.sqlite3")
    batch.service.polls_needed = 3
    # Real time, in small steps: a copy waiting in fake time would race the shared fake
    # clock ahead of the job it waits for.
    client = {
        "cache": cache,
        "clock": SystemClock(),
        "polling": PollPolicy(initial_delay=0.01, max_delay=0.02, adaptive=False),
    }

    result = batch.run("ocr_batch", [original, copy, original], client=client, concurrency=3)

    assert len(batch.service.submits) == 1
    assert [len(r.pages) for r in result.results] == [1, 1, 1]
    assert sum(item.from_cache for item in result.items) == 2
