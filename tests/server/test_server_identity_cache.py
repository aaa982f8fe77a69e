"""The result cache across local servers: keyed by the server's identity, not its port."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from datalab_ocr import DatalabClient, ResultCache
from datalab_ocr._options import OCRJob
from datalab_ocr.server import LocalServer

from .server_helpers import numbered_pdf

StartServer = Callable[..., LocalServer]


def test_a_result_from_one_local_server_answers_for_the_next_on_another_port(
    start_server: StartServer, tmp_path: Path
) -> None:
    document = tmp_path / "doc.pdf"
    document.write_bytes(numbered_pdf(2))
    cache = ResultCache(tmp_path / "cache.sqlite3")
    first, second = start_server(engine="none"), start_server(engine="none")
    with DatalabClient(base_url=first.base_url, cache=cache, rate_limit=False) as client:
        client.ocr(document)

    with DatalabClient(base_url=second.base_url, cache=cache, rate_limit=False) as client:
        item = next(iter(client.iter_batch([document])))

    assert item.from_cache
    assert httpx.get(f"{second.base_url}/_local/stats").json()["submits"] == 0


def test_jobs_recorded_for_a_stopped_local_server_are_forgotten(
    start_server: StartServer, tmp_path: Path
) -> None:
    cache = ResultCache(tmp_path / "cache.sqlite3")
    server = start_server(engine="none")
    server_id = httpx.options(f"{server.base_url}/api/v1/ocr").headers["X-Datalab-Server-Id"]
    gone = OCRJob(
        "old",
        "http://127.0.0.1:1/api/v1/ocr/old",
        server_id=server_id,
        server_instance="a-stopped-run",
    )
    cache.record_job("some-key", gone)
    document = tmp_path / "doc.pdf"
    document.write_bytes(numbered_pdf(1))

    with DatalabClient(base_url=server.base_url, cache=cache, rate_limit=False) as client:
        client.ocr(document)

    assert cache.pending_job("some-key") is None
    assert cache.stats().pending_jobs == 0
