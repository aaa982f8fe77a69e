"""The local server under hostile input: a 4xx or a failed job, never a crash or a hung
worker, and it keeps answering afterwards; a burst of uploads is bounded by its queue.

``tests/server/test_server_api.py`` already covers a corrupt PDF, a 36-megapixel image, an
upload without a file field, and a full queue met one request at a time; these are the
harder variants.
"""

from __future__ import annotations

import asyncio
import io
import random
import resource
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from datalab_ocr.server import LocalServer, ServerConfig

WAIT = 60.0


def valid_pdf() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (200, 100), 255).save(buffer, "PDF")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header promises ``width`` x ``height`` 8-bit pixels (gigabytes when
    decoded) and whose data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\0" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def post(http: httpx.Client, server: LocalServer, content: bytes, name: str, kind: str) -> Any:
    return http.post(
        f"{server.base_url}/api/v1/ocr", files={"file": (name, content, kind)}, timeout=WAIT
    )


def outcome(http: httpx.Client, server: LocalServer, content: bytes, name: str, kind: str) -> str:
    """What became of an upload: "4xx", or the finished job's "ok" / "failed: <error>"."""
    response = post(http, server, content, name, kind)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        return "4xx"
    check_url = response.json()["request_check_url"]
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        body = http.get(check_url, timeout=WAIT).json()
        if body["status"] != "processing":
            return "ok" if body.get("success") else f"failed: {body.get('error')}"
        time.sleep(0.05)
    raise AssertionError(f"the job at {check_url} hung for {WAIT} s")


def still_works(http: httpx.Client, server: LocalServer) -> None:
    assert outcome(http, server, valid_pdf(), "fine.pdf", "application/pdf") == "ok"


@pytest.fixture(scope="module")
def ocr_server() -> Iterator[LocalServer]:
    """A real-OCR server with one worker, so a wedged worker would show at once."""
    config = ServerConfig(workers=1, queue_size=4, cache_size=0, max_image_pixels=50_000_000)
    with LocalServer(config) as server:
        yield server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=WAIT) as client:
        yield client


GARBAGE = random.Random(5).randbytes(64 * 1024)
HOSTILE = {
    "random-bytes-named-pdf": (GARBAGE, "scan.pdf", "application/pdf"),
    "random-bytes-named-png": (GARBAGE, "scan.png", "image/png"),
    "pdf-header-then-garbage": (b"%PDF-1.7\n" + GARBAGE, "scan.pdf", "application/pdf"),
    "pdf-cut-in-half": (valid_pdf()[: len(valid_pdf()) // 2], "half.pdf", "application/pdf"),
    "png-header-then-garbage": (b"\x89PNG\r\n\x1a\n" + GARBAGE, "x.png", "image/png"),
    "png-decoding-to-10-gb": (png_claiming(100_000, 100_000), "bomb.png", "image/png"),
    "png-decoding-to-4-gb-wide": (png_claiming(2**31 - 1, 2), "wide.png", "image/png"),
    "zip-that-is-no-office-file": (b"PK\x03\x04" + GARBAGE, "x.docx", "application/zip"),
}


@pytest.mark.ocr
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_content_gets_a_4xx_or_a_failed_job_and_the_server_goes_on(
    ocr_server: LocalServer, http: httpx.Client, case: str
) -> None:
    content, name, kind = HOSTILE[case]

    result = outcome(http, ocr_server, content, name, kind)

    assert result == "4xx" or result.startswith("failed: "), result
    still_works(http, ocr_server)


@pytest.mark.ocr
def test_a_gigapixel_image_is_refused_as_a_bomb_without_decoding_it(
    ocr_server: LocalServer, http: httpx.Client
) -> None:
    started = time.monotonic()

    result = outcome(http, ocr_server, png_claiming(100_000, 100_000), "bomb.png", "image/png")

    assert "decompression bomb" in result
    # Decoding 10 GB of pixels would take minutes (or the machine); the header alone decides.
    assert time.monotonic() - started < 30


@pytest.fixture
def quick_server() -> Iterator[LocalServer]:
    with LocalServer(ServerConfig(engine="none", cache_size=0)) as server:
        yield server


MALFORMED_BODIES: dict[str, tuple[bytes, str]] = {
    "multipart-without-a-file": (
        b'--b\r\nContent-Disposition: form-data; name="max_pages"\r\n\r\n1\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
    ),
    "file-under-another-name": (
        b'--b\r\nContent-Disposition: form-data; name="document"; filename="a.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n%PDF-1.4\r\n--b--\r\n",
        "multipart/form-data; boundary=b",
    ),
    "boundary-never-closed": (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n%PDF',
        "multipart/form-data; boundary=b",
    ),
    "wrong-boundary": (
        b"--other\r\n\r\nnothing\r\n--other--\r\n",
        "multipart/form-data; boundary=b",
    ),
    "no-boundary": (b"--b\r\n\r\n--b--\r\n", "multipart/form-data"),
    "json-instead-of-a-form": (b'{"file": "a.pdf"}', "application/json"),
    "empty-body": (b"", "multipart/form-data; boundary=b"),
    "binary-noise": (GARBAGE, "multipart/form-data; boundary=b"),
}


@pytest.mark.parametrize("case", list(MALFORMED_BODIES))
def test_a_malformed_submit_body_gets_a_4xx_and_the_server_goes_on(
    quick_server: LocalServer, http: httpx.Client, case: str
) -> None:
    body, content_type = MALFORMED_BODIES[case]

    response = http.post(
        f"{quick_server.base_url}/api/v1/ocr", content=body, headers={"content-type": content_type}
    )

    assert 400 <= response.status_code < 500, response.text
    assert "detail" in response.json()
    still_works(http, quick_server)


def test_a_burst_of_uploads_is_bounded_by_the_queue() -> None:
    # Jobs held longer than a slow machine takes to receive all 50 uploads, so no slot frees
    # up during the burst and "at most the capacity accepted" is a fair bound.
    config = ServerConfig(engine="none", workers=1, queue_size=4, latency=1.5, cache_size=0)
    document = valid_pdf() + b"%" + b"x" * 200_000  # 200 kB each: 10 MB in flight at most

    async def burst(base_url: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(timeout=WAIT, limits=limits) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"{base_url}/api/v1/ocr",
                        files={"file": (f"d{i}.pdf", document, "application/pdf")},
                    )
                    for i in range(50)
                )
            )

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with LocalServer(config) as server, httpx.Client(timeout=WAIT) as http:
        responses = asyncio.run(burst(server.base_url))
        codes = sorted(response.status_code for response in responses)
        accepted = [r for r in responses if r.status_code == 200]
        refused = [r for r in responses if r.status_code != 200]

        assert 1 <= len(accepted) <= config.capacity
        assert {r.status_code for r in refused} <= {429, 503}, codes
        assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
        for response in accepted:  # every accepted job finishes: no hung worker
            body = http.get(response.json()["request_check_url"]).json()
            deadline = time.monotonic() + WAIT
            while body["status"] == "processing" and time.monotonic() < deadline:
                time.sleep(0.05)
                body = http.get(response.json()["request_check_url"]).json()
            assert body["success"] is True
        stats = http.get(f"{server.base_url}/_local/stats").json()
        assert stats["active_jobs"] == 0
        assert stats["queue_full"] == len(refused)
        still_works(http, server)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200
