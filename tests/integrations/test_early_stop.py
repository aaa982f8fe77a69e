"""Stopping an async load early: quietly, at once, and without losing what was paid for.

The reader's ``alazy_load_data`` and the loader's ``alazy_load`` hand over streams that a
caller may leave after the first document: with ``contextlib.aclosing`` (what the README
advises), with ``async with``, or with a bare ``break``. Each must stop the files still in
flight, print nothing at shutdown, and leave the jobs already submitted in the result cache's
ledger so the next load resumes them instead of paying again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Generator
from pathlib import Path

import httpx
import pytest
from langchain_core.documents import Document as LangChainDocument
from llama_index.core.schema import Document as LlamaDocument

from datalab_ocr import AsyncDatalabClient, DatalabClient, PollPolicy, ResultCache
from datalab_ocr.langchain import DatalabOCRLoader
from datalab_ocr.llama_index import DatalabOCRReader
from datalab_ocr.testing import FakeClock

from .conftest import API_KEY, BASE, FakeDatalab, pdf_bytes

ROOT = Path(__file__).resolve().parents[2]
QUICK = "quick.pdf"
SLOW = [f"slow-{n}.pdf" for n in range(5)]

Stream = AsyncIterator[LlamaDocument] | AsyncIterator[LangChainDocument]
OpenStream = Callable[[AsyncDatalabClient, list[Path]], Stream]


def reader_stream(client: AsyncDatalabClient, paths: list[Path]) -> Stream:
    return DatalabOCRReader(async_client=client, concurrency=3).alazy_load_data(paths)


def loader_stream(client: AsyncDatalabClient, paths: list[Path]) -> Stream:
    return DatalabOCRLoader(paths, async_client=client, concurrency=3).alazy_load()


STREAMS = pytest.mark.parametrize(
    "open_stream", [reader_stream, loader_stream], ids=["reader", "loader"]
)


class SlowStart(FakeDatalab):
    """Answers the quick file's polls only once three files were submitted, so that jobs
    are surely in flight when the quick file's documents arrive (up to 2 s of real time)."""

    def _others_started(self) -> bool:
        return len(self.submitted_names) >= 3

    def _is_quick_poll(self, request: httpx.Request) -> bool:
        job = self.jobs.get(request.url.path.rsplit("/", 1)[-1])
        return request.method == "GET" and job is not None and job["filename"] == QUICK

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            time.sleep(0.002)  # a poll takes a little real time, as in ahandle
        deadline = time.monotonic() + 2.0
        while self._is_quick_poll(request) and not self._others_started():
            if time.monotonic() > deadline:
                break
            time.sleep(0.005)
        return super().handle(request)

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + 2.0
        while self._is_quick_poll(request) and not self._others_started():
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        return await super().ahandle(request)


@pytest.fixture
def service() -> FakeDatalab:
    return SlowStart()


@pytest.fixture
def paths(tmp_path: Path) -> list[Path]:
    """One file that completes at once, then five whose jobs stay in flight."""
    made = []
    for name in [QUICK, *SLOW]:
        path = tmp_path / name
        path.write_bytes(pdf_bytes(name))
        made.append(path)
    return made


@pytest.fixture
def cache(tmp_path: Path) -> ResultCache:
    return ResultCache(tmp_path / "cache.sqlite3")


@contextlib.asynccontextmanager
async def cached_client(
    service: FakeDatalab, cache: ResultCache
) -> AsyncIterator[AsyncDatalabClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(service.ahandle))
    async with AsyncDatalabClient(
        API_KEY, BASE, http_client=http, clock=FakeClock(), cache=cache
    ) as client:
        yield client
    await http.aclose()


async def first_document_then_close(stream: Stream) -> None:
    async with contextlib.aclosing(stream) as documents:  # type: ignore[type-var]
        async for _ in documents:
            break


@STREAMS
@pytest.mark.anyio
async def test_closing_the_stream_stops_every_request_at_once(
    open_stream: OpenStream, paths: list[Path], service: FakeDatalab, cache: ResultCache
) -> None:
    service.stuck.update(SLOW)
    async with cached_client(service, cache) as client:
        await first_document_then_close(open_stream(client, paths))
        sent = len(service.requests)
        await asyncio.sleep(0.05)  # ten answers' worth of the fake service's time

    assert len(service.requests) == sent  # no submit and no poll after the close
    assert len(service.submitted_names) < len(paths)  # files not started were never sent


@STREAMS
@pytest.mark.anyio
async def test_jobs_submitted_before_the_stop_are_resumed_not_paid_again(
    open_stream: OpenStream, paths: list[Path], service: FakeDatalab, cache: ResultCache
) -> None:
    service.stuck.update(SLOW)
    async with cached_client(service, cache) as client:
        await first_document_then_close(open_stream(client, paths))
    first_run = set(service.submitted_names) - {QUICK}
    assert first_run  # some slow jobs were in flight when the stream was closed
    assert cache.stats().pending_jobs == len(first_run)

    service.stuck.clear()
    service.requests.clear()
    async with cached_client(service, cache) as client:
        documents = [document async for document in open_stream(client, paths)]

    assert not first_run & set(service.submitted_names)  # resumed by polling, not re-sent
    assert len(documents) == 2 * len(paths)
    assert cache.stats().pending_jobs == 0


@STREAMS
@pytest.mark.anyio
async def test_async_with_closes_the_stream_like_aclosing(
    open_stream: OpenStream, paths: list[Path], service: FakeDatalab, cache: ResultCache
) -> None:
    service.stuck.update(SLOW)
    async with cached_client(service, cache) as client:
        async with open_stream(client, paths) as documents:  # type: ignore[union-attr]
            async for _ in documents:
                break
        sent = len(service.requests)
        await asyncio.sleep(0.05)

    assert len(service.requests) == sent


@STREAMS
@pytest.mark.anyio
async def test_a_bare_break_stops_the_load_once_the_stream_is_dropped(
    open_stream: OpenStream, paths: list[Path], service: FakeDatalab, cache: ResultCache
) -> None:
    service.stuck.update(SLOW)
    async with cached_client(service, cache) as client:
        async for _ in open_stream(client, paths):
            break
        # Dropped: the event loop finalizes the batch within a turn or two. A submit already
        # under way may finish (and is recorded); nothing new starts.
        await asyncio.sleep(0.02)
        sent = len(service.requests)
        await asyncio.sleep(0.05)

    assert len(service.requests) == sent
    submitted = set(service.submitted_names) - {QUICK}
    assert cache.stats().pending_jobs == len(submitted)


# A fresh interpreter, as a user's script: asyncio.run of a function that breaks out.

_SCRIPT = """
import asyncio, contextlib, sys
from pathlib import Path

import httpx

from datalab_ocr import AsyncDatalabClient, ResultCache
from datalab_ocr.langchain import DatalabOCRLoader
from datalab_ocr.llama_index import DatalabOCRReader
from datalab_ocr.server import LocalServer, ServerConfig
from datalab_ocr.testing import FakeClock
from tests.integrations.conftest import API_KEY, BASE, FakeDatalab

folder = Path(sys.argv[1])
files = sorted(folder.glob("*.pdf"))

async def on_the_fake(kind, closing):
    service = FakeDatalab()
    http = httpx.AsyncClient(transport=httpx.MockTransport(service.ahandle))
    client = AsyncDatalabClient(API_KEY, BASE, http_client=http, clock=FakeClock(), cache=False)
    if kind == "reader":
        stream = DatalabOCRReader(async_client=client, concurrency=2).alazy_load_data(files)
    else:
        stream = DatalabOCRLoader(files, async_client=client, concurrency=2).alazy_load()
    if closing:
        async with contextlib.aclosing(stream) as documents:
            async for document in documents:
                break
    else:
        async for document in stream:
            break

async def on_the_local_server(base_url):
    reader = DatalabOCRReader(base_url=base_url, concurrency=2)
    # A one-page image and a three-page PDF: with seconds per page, the PDF is still in
    # flight when the image's document arrives, however slowly the client acts on it.
    async for document in reader.alazy_load_data([folder / "receipt.png", files[0]]):
        break
    await reader.aclose()

if __name__ == "__main__":
    for kind in ("reader", "loader"):
        for closing in (False, True):
            asyncio.run(on_the_fake(kind, closing))
    with LocalServer(ServerConfig(engine="none", workers=1, page_latency=1.5)) as server:
        asyncio.run(on_the_local_server(server.base_url))
    print(ResultCache().stats().pending_jobs)
"""


@pytest.mark.slow
def test_leaving_a_stream_early_in_a_script_is_quiet_and_keeps_the_job_in_flight(
    tmp_path: Path,
) -> None:
    # One interpreter for every case (reader and loader, bare break and aclosing, on the fake
    # service; then a bare break on the real local server): each asyncio.run shuts its loop
    # down, which is where the noise used to come from.
    script = tmp_path / "early_stop.py"
    script.write_text(_SCRIPT)
    sample = (ROOT / "examples" / "data" / "saltmarsh-observatory.pdf").read_bytes()
    for n in range(4):
        # The same document with different content (a comment after its end), so no job is
        # a duplicate of another.
        (tmp_path / f"doc{n}.pdf").write_bytes(sample + f"% copy {n}\n".encode())
    shutil.copy(ROOT / "examples" / "data" / "receipt.png", tmp_path / "receipt.png")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATALAB_OCR_CACHE": "on",
        "DATALAB_OCR_CACHE_DIR": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert (done.returncode, done.stderr) == (0, "")
    assert int(done.stdout.strip()) >= 1  # the local job in flight at the break is recorded


# The sync streams are generators: close() (or contextlib.closing) stops them the same way.


def test_closing_a_sync_stream_stops_the_load_and_keeps_submitted_jobs(
    paths: list[Path], service: FakeDatalab, cache: ResultCache
) -> None:
    service.stuck.update(SLOW)
    http = httpx.Client(transport=httpx.MockTransport(service.handle))
    # Fake time runs fast while the slow jobs are polled: no deadline may end them first.
    polling = PollPolicy(timeout=86_400)
    with DatalabClient(
        API_KEY, BASE, http_client=http, clock=FakeClock(), cache=cache, polling=polling
    ) as client:
        reader = DatalabOCRReader(client=client, concurrency=3)
        documents = reader.lazy_load_data(paths)
        assert isinstance(documents, Generator)  # closable, as every sync stream here
        with contextlib.closing(documents):
            next(documents)
        time.sleep(0.05)  # a request under way when the stream closed may still finish
        sent = len(service.requests)
        time.sleep(0.05)

        assert len(service.requests) == sent
        submitted = set(service.submitted_names) - {QUICK}
        assert submitted
        assert cache.stats().pending_jobs == len(submitted)
