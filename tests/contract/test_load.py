"""Load and recovery: 429s and Retry-After, batches, and the result cache with resume."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from datalab_ocr import JobTimeoutError, OCRResult, PollPolicy, ResultCache

from .conftest import Contract, server_stats, write_pdf

pytestmark = pytest.mark.contract


def test_the_rate_limits_429_is_retried_after_the_servers_retry_after(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    # Two requests a second and a job that needs several polls (no long poll, which would
    # need one): the client (its own rate limiter off) runs into the server's limit and must
    # wait as told to get through.
    run = contract(
        engine="none",
        latency=0.3,
        rate_limit_requests=2,
        rate_limit_window=1.0,
        long_poll_max=0,
    )
    started = time.monotonic()
    result: OCRResult = run.call("ocr", write_pdf(tmp_path, "doc.pdf", 1))
    elapsed = time.monotonic() - started
    assert result.success is True
    stats = server_stats(run.server)
    assert stats["rate_limited"] >= 1
    # Retry-After is at least 1 s; the client's own backoff here is at most 0.2 s.
    assert elapsed >= 0.9


def test_a_full_queues_429_is_retried_until_a_slot_frees(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    # Room for one job at a time: the second file's submit is refused until the first is done.
    run = contract(engine="none", workers=1, queue_size=0, latency=0.4)
    files = [write_pdf(tmp_path, f"doc{i}.pdf", 1) for i in range(2)]
    items = run.batch(files, concurrency=2)
    assert sorted(item.index for item in items) == [0, 1]
    assert all(item.ok for item in items)
    stats = server_stats(run.server)
    assert stats["queue_full"] >= 1
    assert stats["jobs_completed"] == 2


def test_iter_batch_runs_files_concurrently_and_yields_every_one(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    latency = 0.6  # one at a time takes 3.6 s, three at once about 1.2 s: room for a busy CI
    run = contract(engine="none", latency=latency, workers=1)
    files = [write_pdf(tmp_path, f"doc{i}.pdf", i + 1) for i in range(6)]
    started = time.monotonic()
    items = run.batch(files, concurrency=3)
    elapsed = time.monotonic() - started
    assert sorted(item.index for item in items) == list(range(6))
    for item in items:
        assert item.result is not None
        assert item.source.endswith(f"doc{item.index}.pdf")
        assert len(item.result.pages) == item.index + 1
        assert item.request_id == item.result.request_id
    assert elapsed < len(files) * latency  # one at a time would take at least 3.6 s


def test_iter_batch_collects_failures_beside_the_successes(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    run = contract(engine="none")
    broken = tmp_path / "notes.txt"
    broken.write_text("not a document")
    files = [write_pdf(tmp_path, "a.pdf", 1), broken, write_pdf(tmp_path, "b.pdf", 2)]
    items = sorted(run.batch(files, concurrency=2, errors="collect"), key=lambda i: i.index)
    assert [item.ok for item in items] == [True, False, True]
    assert items[1].error is not None
    assert "notes.txt" in str(items[1].error.filename)


def test_an_interrupted_job_is_resumed_by_the_next_client_and_then_cached(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    run = contract(engine="none", latency=1.0)
    document = write_pdf(tmp_path, "doc.pdf", 2)
    cache_path = tmp_path / "cache" / "results.sqlite3"

    # The first client gives up before the job is done, as a killed run would.
    impatient = PollPolicy(initial_delay=0.05, max_delay=0.1, timeout=0.3, adaptive=False)
    with pytest.raises(JobTimeoutError) as caught:
        run.call("ocr", document, client={"cache": ResultCache(cache_path), "polling": impatient})
    with ResultCache(cache_path) as ledger:
        assert ledger.stats().pending_jobs == 1

    # A second client, on the same cache file, polls that job instead of uploading again.
    resumed: OCRResult = run.call("ocr", document, client={"cache": ResultCache(cache_path)})
    assert resumed.request_id == caught.value.request_id
    assert [page.page_index for page in resumed.pages] == [0, 1]
    assert server_stats(run.server)["submits"] == 1

    # A third answers from the cache without a single request.
    before = server_stats(run.server)["requests"]
    items = run.batch([document], client={"cache": ResultCache(cache_path)})
    assert items[0].from_cache is True
    assert items[0].request_id == caught.value.request_id
    assert server_stats(run.server)["requests"] == before
    with ResultCache(cache_path) as ledger:
        stats = ledger.stats()
    assert (stats.results, stats.pending_jobs) == (1, 0)
