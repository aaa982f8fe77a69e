"""Fixtures for the CLI tests: a local server without OCR, documents, and a clean environment.

The CLI runs in-process (``main([...])`` with capsys) against a ``LocalServer`` with
``engine="none"`` reached through ``--base-url``; the few tests that need a real process
(``--local``, Ctrl-C) run ``python -m datalab_ocr.cli``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

import datalab_ocr.cli
from datalab_ocr import DatalabClient, PollPolicy
from datalab_ocr.cli import main
from datalab_ocr.server import LocalServer, ServerConfig


def pdf_bytes(pages: int) -> bytes:
    """A PDF-looking document with ``pages`` page objects (enough for ``engine="none"``)."""
    objects = b"".join(b"%d 0 obj << /Type /Page >> endobj\n" % (i + 1) for i in range(pages))
    return b"%PDF-1.4\n" + objects + b"%%EOF\n"


def write_pdf(path: Path, pages: int = 1) -> Path:
    """Write :func:`pdf_bytes` to ``path`` (creating its folder) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pdf_bytes(pages))
    return path


def write_png(path: Path) -> Path:
    """Write a small white PNG to ``path`` and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("L", (64, 32), 255).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def stats(server: LocalServer) -> dict[str, Any]:
    """The server's counters."""
    api_key = server.config.api_key
    headers = {"X-API-Key": api_key} if api_key else {}
    body: dict[str, Any] = httpx.get(
        f"{server.base_url}/_local/stats", headers=headers, timeout=10.0
    ).json()
    return body


@dataclass
class Run:
    """What one run of the command gave."""

    code: int
    out: str
    err: str


CLI = Callable[..., Run]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run ``datalab-ocr`` in-process with the given arguments; returns a :class:`Run`."""

    def run(*args: str | Path) -> Run:
        capsys.readouterr()  # drop anything printed before
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No developer setting steers the command, and any cache lives in this test's folder
    # (tests/conftest.py also turns caching off; the cache tests turn it back on).
    monkeypatch.delenv("DATALAB_API_KEY", raising=False)
    monkeypatch.delenv("DATALAB_BASE_URL", raising=False)
    monkeypatch.setenv("DATALAB_OCR_CACHE_DIR", str(tmp_path / "cache"))


FAST_POLLING = PollPolicy(initial_delay=0.05, max_delay=0.2, timeout=30.0, adaptive=False)


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    # The command polls on the client's default schedule (first check after a second); the
    # in-process tests poll every 50-200 ms instead, and no job can hang a test.
    class FastPollingClient(DatalabClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("polling", FAST_POLLING)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(datalab_ocr.cli, "DatalabClient", FastPollingClient)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A local server with synthetic pages: fast, no worker processes."""
    with LocalServer(ServerConfig(engine="none")) as local:
        yield local


__all__ = ["CLI", "Run", "pdf_bytes", "read_jsonl", "stats", "write_pdf", "write_png"]
