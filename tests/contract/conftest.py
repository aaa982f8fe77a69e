"""Fixtures for the contract tests: local servers on 127.0.0.1 and both clients against them.

Every scenario runs through the sync and the async client: the ``contract`` fixture is
parametrized over both, and its ``call`` runs the same client method on either, each call on
a fresh client (and, for async, a fresh event loop). Polls and retries use short delays so
the whole suite takes seconds; nothing here waits on a fake clock, these are real requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from datalab_ocr import AsyncDatalabClient, BatchItem, DatalabClient, PollPolicy, RetryPolicy
from datalab_ocr.server import LocalServer, ServerConfig

FAST_POLLING = PollPolicy(initial_delay=0.05, max_delay=0.2, timeout=30.0, adaptive=False)
"""Polls every 50-200 ms, and a bound on every job so that no test can hang."""

FAST_RETRY = RetryPolicy(initial_delay=0.05, max_delay=0.2, max_retry_after=5.0)
"""Short computed backoff, so a wait of a second or more can only be the server's Retry-After."""

StartServer = Callable[..., LocalServer]


def pdf_bytes(pages: int, padding: int = 0) -> bytes:
    """A PDF-looking document with ``pages`` page objects.

    Enough for ``engine="none"``, which counts page objects instead of opening the file;
    ``padding`` bytes make it larger without changing the page count.
    """
    objects = b"".join(b"%d 0 obj << /Type /Page >> endobj\n" % (i + 1) for i in range(pages))
    return b"%PDF-1.4\n" + objects + b"%" + b"0" * padding + b"\n%%EOF\n"


def write_pdf(folder: Path, name: str, pages: int, padding: int = 0) -> Path:
    """Write :func:`pdf_bytes` to ``folder / name`` and return the path."""
    path = folder / name
    path.write_bytes(pdf_bytes(pages, padding))
    return path


def server_stats(server: LocalServer) -> dict[str, Any]:
    """The server's counters (``GET /_local/stats``)."""
    api_key = server.config.api_key
    headers = {"X-API-Key": api_key} if api_key else {}
    response = httpx.get(f"{server.base_url}/_local/stats", headers=headers, timeout=10.0)
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


@dataclass
class Contract:
    """Runs client methods on the sync or the async client against one server.

    ``client_options`` are passed to every client built (``api_key``, ``cache``, ...);
    ``call`` takes more as its ``client`` argument. ``sync_transport`` and ``async_transport``
    replace the network layer when a test needs to reshape requests on their way.
    """

    mode: str
    server: LocalServer
    client_options: dict[str, Any] = field(default_factory=dict)
    sync_transport: httpx.BaseTransport | None = None
    async_transport: httpx.AsyncBaseTransport | None = None

    def _options(self, extra: dict[str, Any] | None) -> dict[str, Any]:
        options: dict[str, Any] = {
            "base_url": self.server.base_url,
            "polling": FAST_POLLING,
            "retry": FAST_RETRY,
            "timeout": 10.0,
            "rate_limit": False,
            "cache": False,
            "seed": 7,
        }
        options.update(self.client_options)
        options.update(extra or {})
        return options

    def call(self, method: str, *args: Any, client: dict[str, Any] | None = None, **kw: Any) -> Any:
        """``client.<method>(*args, **kw)`` on a fresh sync or async client."""
        options = self._options(client)
        if self.mode == "sync":
            http = httpx.Client(transport=self.sync_transport, timeout=10.0)
            with http, DatalabClient(http_client=http, **options) as sync_client:
                return getattr(sync_client, method)(*args, **kw)

        async def run() -> Any:
            http = httpx.AsyncClient(transport=self.async_transport, timeout=10.0)
            async with http, AsyncDatalabClient(http_client=http, **options) as async_client:
                return await getattr(async_client, method)(*args, **kw)

        return asyncio.run(run())

    def batch(
        self, files: list[Any], *, client: dict[str, Any] | None = None, **kw: Any
    ) -> list[BatchItem]:
        """Every item ``iter_batch(files, **kw)`` yields, in completion order."""
        options = self._options(client)
        if self.mode == "sync":
            with DatalabClient(**options) as sync_client:
                return list(sync_client.iter_batch(files, **kw))

        async def run() -> list[BatchItem]:
            async with AsyncDatalabClient(**options) as async_client:
                return [item async for item in async_client.iter_batch(files, **kw)]

        return asyncio.run(run())


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The clients read these; a developer's own settings must not steer the tests.
    monkeypatch.delenv("DATALAB_API_KEY", raising=False)
    monkeypatch.delenv("DATALAB_BASE_URL", raising=False)


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start a LocalServer on loopback with the given config fields; stopped after the test."""
    started: list[LocalServer] = []

    def start(**fields: Any) -> LocalServer:
        server = LocalServer(ServerConfig(**fields)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def tesseract_server() -> Iterator[LocalServer]:
    """One real-OCR server (Tesseract, one worker) shared by the tests that need real OCR."""
    with LocalServer(ServerConfig(workers=1, cache_size=0)) as server:
        yield server


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Which client a scenario runs on."""
    return str(request.param)


@pytest.fixture
def contract(mode: str, start_server: StartServer) -> Callable[..., Contract]:
    """Build a :class:`Contract` for ``mode`` on a fresh server with the given config fields."""

    def build(**fields: Any) -> Contract:
        return Contract(mode=mode, server=start_server(**fields))

    return build


__all__ = [
    "FAST_POLLING",
    "FAST_RETRY",
    "Contract",
    "StartServer",
    "pdf_bytes",
    "server_stats",
    "write_pdf",
]
