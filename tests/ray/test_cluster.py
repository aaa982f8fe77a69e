"""The distributed path on three loopback nodes: one rate limit for all, and a killed worker.

The nodes are separate raylets with their own worker processes and object stores, so the
named limiter actor is reached from other nodes, chunks of a PDF travel between object
stores, and a killed engine process is retried by Ray for real.
"""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from ray.cluster_utils import Cluster

from datalab_ocr import PollPolicy, RateLimiter, RetryPolicy
from datalab_ocr.ray import OCRProgress, read_ocr
from tests.reliability.fault_server import JobPlan

from .conftest import API_KEY, RateLimitedServer, engine_worker_pids, scanned_pdf

pytestmark = pytest.mark.usefixtures("three_nodes")

FILES = 40
LIMIT, WINDOW = 20, 2.0


def test_hosted_mode_shares_one_limit_and_meets_its_floor(
    limited_server: RateLimitedServer, tmp_path: Path
) -> None:
    server = limited_server
    server.reset()
    server.limit = (LIMIT, WINDOW)
    paths = []
    for number in range(FILES):
        path = tmp_path / f"doc-{number:02d}.pdf"
        path.write_bytes(b"%PDF-1.4\n% " + str(number).encode() + b"\n<< /Type /Page >>\n%%EOF\n")
        server.plans[path.name] = JobPlan(processing_polls=0)
        paths.append(str(path))
    progress = OCRProgress()
    rows = read_ocr(
        paths,
        api_key=API_KEY,
        base_url=server.base_url,
        concurrency=3,
        threads=8,
        progress=progress,
        cache=False,
        # The server's window plus a margin for the delay between a slot's grant and its
        # request's arrival: 0.1 s was exceeded once at a load of 10 on 2 cores (one 429).
        # The floor check below still holds: 3 windows of 2.25 s are 1.125x the floor.
        rate_limit=RateLimiter(LIMIT, WINDOW, margin=0.25),
        limiter_name="test-cluster-limit",
        retry=RetryPolicy(initial_delay=0.05, max_delay=0.5),
        # A fixed schedule: this measures the shared limit, not the adaptive planner (which,
        # a planner per worker process, still leaves slots of the window idle for jobs that
        # finish at once: 8.6 s against the 6.0 s floor; see docs/SCALE.md).
        polling=PollPolicy(initial_delay=0.05, max_delay=0.5, timeout=60, adaptive=False),
    ).take_all()

    assert server.rate_limited() == 0
    assert sorted(row["source"] for row in rows) == sorted(paths)
    assert all(len(created) == 1 for created in server.creations_by_file().values())
    seen = server.seen()
    # At most LIMIT requests fit in the first instant and in each window after it.
    floor = (math.ceil(len(seen) / LIMIT) - 1) * WINDOW
    span = seen[-1].at - seen[0].at
    assert span <= 1.2 * floor, (span, floor, len(seen))
    report = progress.report()
    assert report.requests == len(seen)
    assert report.nodes >= 2


def test_a_killed_engine_worker_loses_and_duplicates_no_page(
    three_nodes: Cluster, tmp_path: Path
) -> None:
    pages = 8
    pdf = scanned_pdf(tmp_path / "scans.pdf", pages)
    progress = OCRProgress()
    dataset = read_ocr(str(pdf), local=True, chunk_pages=1, progress=progress)
    rows: list[dict[str, Any]] = []
    killed: list[int] = []
    for row in dataset.iter_rows():
        rows.append(dict(row))
        if not killed:
            # One page is done, the others are being read: kill an engine mid-work.
            victims = engine_worker_pids(three_nodes)
            assert victims
            os.kill(victims[0], signal.SIGKILL)
            killed.append(victims[0])
    assert sorted(row["page_index"] for row in rows) == list(range(pages))
    assert all("Dear" in row["text"] for row in rows)
    # The pages of the one file were read on more than one node.
    assert progress.report().nodes >= 2
