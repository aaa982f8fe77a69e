"""A bounded soak: 1,000 files through the batch API while a tenth of all requests fail.

The faults are a seeded mix of every transient kind, some of them after the service made the
job (the unsure submit). Nothing may be lost and no page may arrive twice; duplicate jobs on
the service are counted and each must be explained by a submit answer that was lost.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from datalab_ocr import AsyncDatalabClient, BatchResult, DatalabClient, PollPolicy, RetryPolicy

from .conftest import SOAK_REPORT, client_options, make_pdf
from .fault_server import DROP, MALFORMED, TRUNCATE, Chaos, Fault, FaultServer, JobPlan, page_text
from .fault_server import slow as slow_fault
from .fault_server import status as status_fault

FILES = 1000
CONCURRENCY = 32
FAULT_RATE = 0.10
LATENCY = (0.05, 0.2)
BUDGET_SECONDS = 120.0
# The client gives up on an answer after this long. On a loaded one-core machine a normal
# submit answer took over 1 s, the client sent the file again and the duplicate had no
# injected cause; 2.5 s keeps every such give-up an injected one (slow faults outlast it).
READ_TIMEOUT = 2.5

TRANSIENT = [
    status_fault(429),
    status_fault(429, retry_after="0"),
    status_fault(500),
    status_fault(502, html=True),
    status_fault(503),
    status_fault(504),
    status_fault(529),
    DROP,
    TRUNCATE,
    MALFORMED,
    slow_fault(READ_TIMEOUT + 0.2),
]
# On submits, some faults strike after the job was made: the answer is lost, not the upload.
LOST_ANSWERS = [
    Fault("drop", after_work=True),
    Fault("truncate", after_work=True),
    status_fault(504, after_work=True),
    slow_fault(READ_TIMEOUT + 0.2, after_work=True),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("soak")
    return [make_pdf(folder, f"doc{i:04d}.pdf", pages=1 + i % 3) for i in range(FILES)]


def run_batch(mode: str, server: FaultServer, files: list[Path]) -> BatchResult:
    options = client_options(
        server,
        timeout=httpx.Timeout(READ_TIMEOUT),
        retry=RetryPolicy(initial_delay=0.01, max_delay=0.1),
        polling=PollPolicy(
            initial_delay=0.05, multiplier=1.5, max_delay=0.2, timeout=60, adaptive=False
        ),
    )
    if mode == "sync":
        with DatalabClient(**options) as client:
            return client.ocr_batch(files, concurrency=CONCURRENCY, errors="collect")

    async def run() -> BatchResult:
        async with AsyncDatalabClient(**options) as client:
            return await client.ocr_batch(files, concurrency=CONCURRENCY, errors="collect")

    return asyncio.run(run())


@pytest.mark.soak
@pytest.mark.parametrize("mode", ["async", "sync"])
def test_a_thousand_files_through_ten_percent_faults_lose_and_duplicate_nothing(
    mode: str, files: list[Path]
) -> None:
    with FaultServer(latency=LATENCY, seed=11) as server:
        server.chaos = Chaos(
            rate=FAULT_RATE,
            faults=TRANSIENT,
            submit_faults=[*TRANSIENT, *LOST_ANSWERS],
            seed=2024,
        )
        for path in files:
            server.plans[path.name] = JobPlan(pages=1 + int(path.stem[3:]) % 3)
        started = time.monotonic()
        result = run_batch(mode, server, files)
        elapsed = time.monotonic() - started
        requests = list(server.requests)
        creations = server.creations_by_file()

    delivered = [item for item in result.items if item.ok]
    lost = [item for item in result.items if not item.ok]
    duplicated_pages = 0
    wrong_pages = 0
    for item in delivered:
        assert item.result is not None
        name = Path(item.source).name
        texts = [page.text for page in item.result.pages]
        duplicated_pages += len(texts) - len(set(texts))
        wanted = [page_text(name, i) for i in range(server.plans[name].pages)]
        wrong_pages += texts != wanted
    duplicate_jobs = {name: jobs for name, jobs in creations.items() if len(jobs) > 1}
    causes = Counter(
        job.answer_fault.label if job.answer_fault else "none (unexplained)"
        for jobs in duplicate_jobs.values()
        for job in jobs[:-1]
    )
    faults = Counter(r.fault.label for r in requests if r.fault is not None)
    submits = sum(r.method == "POST" for r in requests)
    polls = len(requests) - submits

    SOAK_REPORT.extend(
        [
            f"[{mode}] {FILES} files, concurrency {CONCURRENCY}, {FAULT_RATE:.0%} faults, "
            f"job latency {LATENCY[0]:g}-{LATENCY[1]:g} s: {elapsed:.1f} s",
            f"[{mode}]   delivered {len(delivered)}, lost {len(lost)}, duplicated pages "
            f"{duplicated_pages}, wrong page lists {wrong_pages}, indices seen "
            f"{len({item.index for item in result.items})}",
            f"[{mode}]   requests {len(requests)} ({submits} submits, {polls} polls), faults "
            f"injected {sum(faults.values())}: {dict(sorted(faults.items()))}",
            f"[{mode}]   jobs created {sum(map(len, creations.values()))}, duplicate "
            f"submissions {sum(causes.values())} by cause: {dict(sorted(causes.items()))}",
        ]
    )
    assert [str(item.error) for item in lost] == []
    assert len(delivered) == FILES
    assert sorted(item.index for item in result.items) == list(range(FILES))
    assert duplicated_pages == wrong_pages == 0
    # Every duplicate job on the service comes from a submit whose answer was lost after the
    # job was made; a fault before the job was made never doubles it.
    assert all(
        job.answer_fault is not None for jobs in duplicate_jobs.values() for job in jobs[:-1]
    )
    assert all(
        job.answer_fault.after_work
        for jobs in duplicate_jobs.values()
        for job in jobs[:-1]
        if job.answer_fault is not None
    )
    assert elapsed < BUDGET_SECONDS
