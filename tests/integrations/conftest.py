"""Fixtures for the integration tests: a fake Datalab service on httpx.MockTransport.

The fake answers like the hosted API (submit, one "processing" poll, then the result) and
makes up pages from the uploaded file name, so tests can say what each file should hold.
Clients run in fake time (``FakeClock``), so polling never waits.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from datalab_ocr import AsyncDatalabClient, DatalabClient
from datalab_ocr.testing import FakeClock

from . import recording

API_KEY = "dl-integration-test-key-93c1"
BASE = "https://www.datalab.to"
VERSIONS = {"surya": "0.17.0", "models": {"detector": "2025-01"}}


def pdf_bytes(tag: str) -> bytes:
    """A file the client takes for a PDF; ``tag`` makes its content (and its ids) unique."""
    return b"%PDF-1.4\n% " + tag.encode() + b"\n" + b"0" * 512 + b"\n%%EOF\n"


def png_bytes(tag: str) -> bytes:
    """A file the client takes for a PNG."""
    return b"\x89PNG\r\n\x1a\n" + tag.encode() + b"\x00" * 256


@dataclass
class FakeDatalab:
    """A stateful fake of the OCR endpoint.

    ``pages`` maps an uploaded file name to its pages' lines; other files get two pages,
    "<name> page N". Files named in ``failing`` complete with ``success: false``.
    ``in_flight`` and ``max_in_flight`` count jobs between submit and result.
    """

    pages: dict[str, list[list[str]]] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    stuck: set[str] = field(default_factory=set)
    requests: list[httpx.Request] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request, synchronously."""
        request.read()
        self.requests.append(request)
        if request.method == "POST" and request.url.path == "/api/v1/ocr":
            return self._submit(request)
        if request.method == "GET" and request.url.path.startswith("/api/v1/ocr/"):
            return self._poll(request.url.path.rsplit("/", 1)[-1])
        return httpx.Response(404, json={"detail": "Not Found"})

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request, letting other tasks run first (so concurrency shows)."""
        # A few real milliseconds per answer, so that jobs overlap as on a real service
        # (files are hashed in worker threads first, which take their own time).
        await asyncio.sleep(0.005)
        return self.handle(request)

    @property
    def submitted_names(self) -> list[str]:
        """The file names uploaded, in order."""
        return [multipart(request)[0] for request in self.requests if request.method == "POST"]

    def _submit(self, request: httpx.Request) -> httpx.Response:
        filename, fields = multipart(request)
        request_id = f"req-{next(self._ids)}"
        self.jobs[request_id] = {"filename": filename, "fields": fields, "polls": 0}
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return httpx.Response(
            200,
            json={
                "request_id": request_id,
                "request_check_url": f"{BASE}/api/v1/ocr/{request_id}",
                "success": True,
                "error": None,
                "versions": {},
            },
        )

    def _poll(self, request_id: str) -> httpx.Response:
        job = self.jobs.get(request_id)
        if job is None:
            return httpx.Response(404, json={"detail": "Not Found"})
        job["polls"] += 1
        if job["polls"] == 1 or job["filename"] in self.stuck:
            return httpx.Response(200, json={"status": "processing"})
        self.in_flight -= 1
        filename = job["filename"]
        if filename in self.failing:
            return httpx.Response(
                200,
                json={"status": "complete", "success": False, "error": "Could not read file"},
            )
        lines = self.pages.get(filename) or [
            [f"{filename} page {n}", "second line"] for n in (1, 2)
        ]
        selection = _selection(job["fields"].get("page_range"), len(lines))
        pages = [_page(index, lines[index]) for index in selection]
        return httpx.Response(
            200,
            json={
                "status": "complete",
                "success": True,
                "error": "",
                "pages": pages,
                "page_count": len(pages),
                "versions": VERSIONS,
            },
        )


def _selection(page_range: str | None, count: int) -> list[int]:
    if not page_range:
        return list(range(count))
    chosen: list[int] = []
    for part in page_range.split(","):
        first, _, last = part.partition("-")
        chosen.extend(range(int(first), int(last or first) + 1))
    return [index for index in chosen if index < count]


def _page(index: int, lines: list[str]) -> dict[str, Any]:
    return {
        "page": index + 1,
        "image_bbox": [0.0, 0.0, 800.0, 1000.0],
        "text_lines": [
            {
                "text": text,
                "confidence": 0.5 + 0.1 * row,
                "polygon": [[10.0, 10.0 + 20 * row], [200.0, 10.0 + 20 * row]],
                "bbox": [10.0, 10.0 + 20 * row, 200.0, 28.0 + 20 * row],
            }
            for row, text in enumerate(lines)
        ],
    }


def multipart(request: httpx.Request) -> tuple[str, dict[str, str]]:
    """The uploaded file name and the plain form fields of a submit request."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    filename, fields = "", {}
    for part in request.content.split(b"--" + boundary):
        head, _, body = part.partition(b"\r\n\r\n")
        if b"filename=" in head:
            filename = head.split(b'filename="')[1].split(b'"')[0].decode()
        elif b'name="' in head:
            name = head.split(b'name="')[1].split(b'"')[0].decode()
            fields[name] = body.rstrip(b"\r\n").decode()
    return filename, fields


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up a real key or base URL from the developer's shell."""
    monkeypatch.delenv("DATALAB_API_KEY", raising=False)
    monkeypatch.delenv("DATALAB_BASE_URL", raising=False)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop the async client is written for."""
    return "asyncio"


@pytest.fixture
def service() -> FakeDatalab:
    """The fake service, fresh for each test."""
    return FakeDatalab()


@pytest.fixture
def client(service: FakeDatalab) -> Iterator[DatalabClient]:
    """A sync client talking to the fake service in fake time."""
    http = httpx.Client(transport=httpx.MockTransport(service.handle))
    with DatalabClient(API_KEY, BASE, http_client=http, clock=FakeClock(), seed=1) as client:
        yield client
    http.close()


@pytest.fixture
async def async_client(service: FakeDatalab) -> AsyncIterator[AsyncDatalabClient]:
    """An async client talking to the fake service in fake time."""
    http = httpx.AsyncClient(transport=httpx.MockTransport(service.ahandle))
    async with AsyncDatalabClient(
        API_KEY, BASE, http_client=http, clock=FakeClock(), seed=1
    ) as client:
        yield client
    await http.aclose()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Three files on disk: two PDFs and a PNG, each with distinct content."""
    made = {
        "report.pdf": pdf_bytes("report"),
        "letter.pdf": pdf_bytes("letter"),
        "scan.png": png_bytes("scan"),
    }
    paths = {}
    for name, data in made.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = path
    return paths


# Cassettes: replayed by default, recorded with DATALAB_RECORD=1 (local) or =hosted.


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cassette: replays recorded HTTP exchanges (DATALAB_RECORD=1 re-records)"
    )


@pytest.fixture(scope="session")
def record_mode() -> str:
    """How cassette tests run: ``replay`` (default), ``local`` or ``hosted``."""
    return recording.record_mode()


@pytest.fixture(scope="session")
def hosted_backend(record_mode: str) -> recording.Backend | None:
    """The hosted API when recording against it, read before any test clears the env."""
    return recording.hosted_backend() if record_mode == "hosted" else None


@pytest.fixture
def live_backend(
    record_mode: str, hosted_backend: recording.Backend | None
) -> Iterator[recording.Backend | None]:
    """The server recordings go to; None on replay.

    The local server is started afresh for each test, so that no test sees results cached
    by another, and with some latency, so that recordings hold "processing" polls.
    """
    if record_mode == "local":
        from datalab_ocr.server import LocalServer, ServerConfig

        config = ServerConfig(api_key=recording.RECORDING_KEY, latency=0.3)
        with LocalServer(config) as server:
            yield recording.Backend("local", server.base_url, recording.RECORDING_KEY)
    else:
        yield hosted_backend


@pytest.fixture
def tape(
    record_mode: str, live_backend: recording.Backend | None
) -> Callable[[str], AbstractContextManager[recording.Backend]]:
    """``with tape("name") as backend:`` replays (or records) ``cassettes/name.yaml``."""

    @contextmanager
    def use(name: str) -> Iterator[recording.Backend]:
        backend = live_backend or recording.replay_backend(name, record_mode)
        with recording.cassette(name, backend):
            yield backend

    return use
