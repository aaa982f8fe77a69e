"""Fixtures for the client core: a scripted service on httpx.MockTransport, in fake time.

Every scenario runs through both clients: the ``harness`` fixture is parametrized over
"sync" and "async", and its ``call`` runs the same client method on either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from datalab_ocr import AsyncDatalabClient, DatalabClient
from datalab_ocr.testing import FakeClock

API_KEY = "dl-test-key-5f1e2d3c4b5a"
BASE = "https://www.datalab.to"
PDF_BYTES = b"%PDF-1.4\n" + b"0" * 2000 + b"\n%%EOF\n"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def submitted(request_id: str = "req-1", check_url: str | None = None) -> httpx.Response:
    """A submit answer, as the hosted API sends it."""
    return httpx.Response(
        200,
        json={
            "request_id": request_id,
            "request_check_url": check_url or f"{BASE}/api/v1/ocr/{request_id}",
            "success": True,
            "error": None,
            "versions": {},
        },
    )


def processing() -> httpx.Response:
    """A poll answer while the job runs."""
    return httpx.Response(200, json={"status": "processing"})


def page(number: int, *lines: str) -> dict[str, Any]:
    """A page object with one text line per string."""
    return {
        "page": number,
        "image_bbox": [0.0, 0.0, 816.0, 1056.0],
        "text_lines": [
            {
                "text": text,
                "confidence": 0.9,
                "polygon": [[10.0, 10.0], [100.0, 10.0], [100.0, 20.0], [10.0, 20.0]],
                "bbox": [10.0, 10.0, 100.0, 20.0],
            }
            for text in lines
        ],
    }


def complete(*pages: dict[str, Any], **fields: Any) -> httpx.Response:
    """A poll answer for a finished, successful job."""
    body = {
        "status": "complete",
        "success": True,
        "error": "",
        "pages": list(pages) or [page(1, "hello")],
        "page_count": len(pages) or 1,
        "versions": {"surya": "0.17.0"},
        "total_cost": 1.0,
    }
    body.update(fields)
    return httpx.Response(200, json=body)


def status(
    code: int, detail: Any = "nope", headers: dict[str, str] | None = None
) -> httpx.Response:
    """An error answer with a ``{"detail": ...}`` body."""
    return httpx.Response(code, json={"detail": detail}, headers=headers)


@dataclass
class ScriptedService:
    """A MockTransport handler that answers submits and polls from scripts, in order.

    An exception in a script is raised as the transport's failure; a callable is called with
    the request. Every request is recorded, with its body read.
    """

    submits: list[Reply] = field(default_factory=list)
    polls: list[Reply] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        script = self.submits if request.method == "POST" else self.polls
        if not script:
            raise AssertionError(f"unexpected {request.method} {request.url}")
        reply = script.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    @property
    def posts(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]

    @property
    def gets(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "GET"]


@dataclass
class Harness:
    """Runs client methods on the sync or the async client against a scripted service."""

    mode: str
    service: ScriptedService = field(default_factory=ScriptedService)
    clock: FakeClock = field(default_factory=FakeClock)
    client_kwargs: dict[str, Any] = field(default_factory=dict)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        options: dict[str, Any] = {"api_key": API_KEY, "clock": self.clock, "seed": 7}
        options.update(self.client_kwargs)
        transport = httpx.MockTransport(self.service)
        if self.mode == "sync":
            with DatalabClient(http_client=httpx.Client(transport=transport), **options) as c:
                return getattr(c, method)(*args, **kwargs)

        async def run() -> Any:
            http = httpx.AsyncClient(transport=transport)
            async with AsyncDatalabClient(http_client=http, **options) as c:
                return await getattr(c, method)(*args, **kwargs)

        return asyncio.run(run())


@pytest.fixture(params=["sync", "async"])
def harness(request: pytest.FixtureRequest) -> Harness:
    return Harness(mode=request.param)


@pytest.fixture
def pdf_file(tmp_path: Path) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(PDF_BYTES)
    return path


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATALAB_API_KEY", raising=False)
    monkeypatch.delenv("DATALAB_BASE_URL", raising=False)


def form_fields(request: httpx.Request) -> dict[str, str]:
    """The plain form fields of a multipart request (not the file)."""
    content_type = request.headers["content-type"]
    boundary = content_type.split("boundary=")[1].encode()
    fields = {}
    for part in request.content.split(b"--" + boundary):
        head, _, body = part.partition(b"\r\n\r\n")
        if b"name=" in head and b"filename=" not in head:
            name = head.split(b'name="')[1].split(b'"')[0].decode()
            fields[name] = body.rstrip(b"\r\n").decode()
    return fields


def file_part(request: httpx.Request) -> tuple[str, str, bytes]:
    """The file part of a multipart request: field name, file name and content."""
    content_type = request.headers["content-type"]
    boundary = content_type.split("boundary=")[1].encode()
    for part in request.content.split(b"--" + boundary):
        head, _, body = part.partition(b"\r\n\r\n")
        if b"filename=" in head:
            name = head.split(b'name="')[1].split(b'"')[0].decode()
            filename = head.split(b'filename="')[1].split(b'"')[0].decode()
            return name, filename, body[: -len(b"\r\n")]
    raise AssertionError("no file part")


__all__ = [
    "API_KEY",
    "BASE",
    "PDF_BYTES",
    "Harness",
    "ScriptedService",
    "complete",
    "file_part",
    "form_fields",
    "page",
    "processing",
    "status",
    "submitted",
]
