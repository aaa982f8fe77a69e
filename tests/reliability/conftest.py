"""Fixtures for the reliability suite: the fault server, tiny documents, and both clients.

Every scenario runs on the sync and the async client (the ``runner`` fixture is parametrized
over both) against one fault server on loopback, reset between tests. Waits are real but
small: retries start at 10 ms, polls at 10 ms, and the HTTP read timeout is 0.3 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from datalab_ocr import AsyncDatalabClient, DatalabClient, PollPolicy, RetryPolicy

from .fault_server import FaultServer

API_KEY = "dl-reliability-key-7c3e9a1f"
TIMEOUT = httpx.Timeout(0.3)
RETRY = RetryPolicy(initial_delay=0.01, max_delay=0.05)
POLLING = PollPolicy(initial_delay=0.01, multiplier=1.5, max_delay=0.05, timeout=10, adaptive=False)

# Figures the soak test measured, printed at the end of the run.
SOAK_REPORT: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "soak: a bounded load test against injected faults (about 20 s)"
    )
    # Also registered by tests/server/conftest.py; here so this folder runs on its own.
    config.addinivalue_line(
        "markers", "ocr: starts OCR worker processes (real Tesseract); a few seconds each"
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SOAK_REPORT:
        terminalreporter.section("reliability soak")
        for line in SOAK_REPORT:
            terminalreporter.write_line(line)


def tiny_pdf(name: str, pages: int = 1) -> bytes:
    """A small PDF unique to ``name`` whose page objects the client can count."""
    body = b"".join(b"<< /Type /Page >>\n" for _ in range(pages))
    return b"%PDF-1.4\n% " + name.encode() + b"\n" + body + b"%%EOF\n"


def make_pdf(folder: Path, name: str, pages: int = 1) -> Path:
    """Write :func:`tiny_pdf` to ``folder/name`` and return the path."""
    path = folder / name
    path.write_bytes(tiny_pdf(name, pages))
    return path


@pytest.fixture(scope="session")
def fault_server() -> Iterator[FaultServer]:
    """One fault server for the session; use the ``server`` fixture, which resets it."""
    with FaultServer() as server:
        yield server


@pytest.fixture
def server(fault_server: FaultServer) -> FaultServer:
    """The fault server, with no scripts, plans, records or jobs."""
    fault_server.reset()
    return fault_server


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    """A one-page PDF named ``report.pdf``."""
    return make_pdf(tmp_path, "report.pdf")


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATALAB_API_KEY", raising=False)
    monkeypatch.delenv("DATALAB_BASE_URL", raising=False)


def client_options(server: FaultServer, **overrides: Any) -> dict[str, Any]:
    """Client arguments for the fault server: small waits, no client rate limit, no cache."""
    options: dict[str, Any] = {
        "api_key": API_KEY,
        "base_url": server.base_url,
        "timeout": TIMEOUT,
        "retry": RETRY,
        "polling": POLLING,
        "rate_limit": False,
        "cache": False,
        "seed": 3,
    }
    options.update(overrides)
    return options


@dataclass
class Runner:
    """Calls one client method on the sync or the async client against the fault server."""

    mode: str
    server: FaultServer
    client_kwargs: dict[str, Any] = field(default_factory=dict)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        options = client_options(self.server, **self.client_kwargs)
        if self.mode == "sync":
            with DatalabClient(**options) as client:
                return getattr(client, method)(*args, **kwargs)

        async def run() -> Any:
            async with AsyncDatalabClient(**options) as client:
                return await getattr(client, method)(*args, **kwargs)

        return asyncio.run(run())


@pytest.fixture(params=["sync", "async"])
def runner(request: pytest.FixtureRequest, server: FaultServer) -> Runner:
    return Runner(mode=request.param, server=server)
