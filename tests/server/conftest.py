"""Fixtures for the local server's tests: servers on loopback, started and stopped here."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from datalab_ocr.server import LocalServer, ServerConfig


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ocr: starts OCR worker processes (real Tesseract); a few seconds each"
    )


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A plain httpx client with bounded timeouts."""
    with httpx.Client(timeout=30.0) as http:
        yield http


@pytest.fixture
def start_server() -> Iterator[Callable[..., LocalServer]]:
    """Start a LocalServer with the given config fields; stopped after the test."""
    started: list[LocalServer] = []

    def start(**fields: object) -> LocalServer:
        server = LocalServer(ServerConfig(**fields)).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def ocr_server() -> Iterator[LocalServer]:
    """One real-OCR server (Tesseract, two workers) shared by the tests that need OCR."""
    config = ServerConfig(workers=2, max_image_pixels=20_000_000, cache_size=0)
    with LocalServer(config) as server:
        yield server
