"""Every error status of the contract, as the real server sends it and the client maps it.

Where the client refuses a request before sending it (400 for unsupported content, 422 for
an invalid page range), the server's side is shown with plain httpx and the client's refusal
is asserted separately.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from datalab_ocr import (
    AsyncDatalabClient,
    AuthenticationError,
    InvalidInputError,
    JobFailedError,
    NotFoundError,
    PayloadTooLargeError,
    RequestValidationError,
)
from datalab_ocr.server import LocalServer

from .conftest import (
    FAST_POLLING,
    FAST_RETRY,
    Contract,
    StartServer,
    pdf_bytes,
    server_stats,
    write_pdf,
)

pytestmark = pytest.mark.contract

SERVER_KEY = "local-contract-key-7a1b"


@pytest.mark.parametrize("given", [None, "wrong-key"], ids=["missing", "wrong"])
def test_a_missing_or_wrong_api_key_is_an_authentication_error(
    contract: Callable[..., Contract], tmp_path: Path, given: str | None
) -> None:
    run = contract(engine="none", api_key=SERVER_KEY)
    with pytest.raises(AuthenticationError) as caught:
        run.call("ocr", write_pdf(tmp_path, "doc.pdf", 1), client={"api_key": given})
    assert caught.value.status_code == 401
    assert caught.value.filename is not None
    assert "doc.pdf" in caught.value.filename
    assert SERVER_KEY not in str(caught.value)
    assert server_stats(run.server)["unauthorized"] == 1  # refused at once, never retried


def test_the_right_api_key_is_accepted(contract: Callable[..., Contract], tmp_path: Path) -> None:
    run = contract(engine="none", api_key=SERVER_KEY)
    result = run.call("ocr", write_pdf(tmp_path, "doc.pdf", 1), client={"api_key": SERVER_KEY})
    assert result.success is True


def test_an_unknown_request_id_is_not_found(contract: Callable[..., Contract]) -> None:
    run = contract(engine="none")
    with pytest.raises(NotFoundError) as caught:
        run.call("wait", "nope")
    assert caught.value.status_code == 404
    assert caught.value.request_id == "nope"


def test_a_result_is_not_found_once_it_has_expired(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    # Long enough that a loaded machine still fetches the result first; then poll for the 404
    # rather than sleep a fixed time, so the test takes about the lifetime and no longer.
    run = contract(engine="none", result_ttl=2.0)
    job = run.call("submit", write_pdf(tmp_path, "doc.pdf", 1))
    assert run.call("wait", job).success is True
    deadline = time.monotonic() + 30
    while httpx.get(job.check_url, timeout=10.0).status_code != 404:
        assert time.monotonic() < deadline, "the result never expired"
        time.sleep(0.1)
    with pytest.raises(NotFoundError) as caught:
        run.call("wait", job.request_id)
    assert caught.value.request_id == job.request_id


def test_a_file_over_the_servers_upload_limit_is_payload_too_large(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    run = contract(engine="none", max_upload_bytes=10_000)
    big = write_pdf(tmp_path, "big.pdf", 1, padding=20_000)
    with pytest.raises(PayloadTooLargeError) as caught:
        run.call("ocr", big)
    assert caught.value.status_code == 413
    assert "big.pdf" in str(caught.value.filename)
    assert server_stats(run.server)["submits"] == 1  # never retried


def test_a_corrupt_pdf_fails_its_job_naming_the_file_and_request_id(
    mode: str, tesseract_server: LocalServer, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pdf"
    # Whole as far as the client can tell (it ends with %%EOF), garbage inside.
    broken.write_bytes(b"%PDF-1.7\n this is not a pdf at all\n%%EOF\n")
    run = Contract(mode=mode, server=tesseract_server)
    with pytest.raises(JobFailedError) as caught:
        run.call("ocr", broken)
    error = caught.value
    assert "broken.pdf" in str(error.filename)
    assert error.request_id
    assert "broken.pdf" in str(error)
    assert error.request_id in str(error)


def test_a_page_range_past_the_end_is_refused_before_upload(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    # The client counts the PDF's pages, so a selection with none of them is never sent.
    run = contract(engine="none")
    with pytest.raises(InvalidInputError, match=r"two\.pdf, which has 2 pages"):
        run.call("ocr", write_pdf(tmp_path, "two.pdf", 2), page_range="5-6")
    assert server_stats(run.server)["submits"] == 0


def test_a_page_range_past_the_end_of_an_uncountable_pdf_fails_the_job(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    # With compressed object streams the client cannot count pages, so it sends the range;
    # the server then fails the job the same way.
    run = contract(engine="none")
    path = write_pdf(tmp_path, "two.pdf", 2)
    path.write_bytes(path.read_bytes().replace(b"%PDF-1.4\n", b"%PDF-1.5\n% /Type /ObjStm\n"))
    with pytest.raises(JobFailedError, match="no page"):
        run.call("ocr", path, page_range="5-6")


# -- 400 and 422: the client refuses first, so the server's side is shown with plain httpx --


def test_the_server_answers_unsupported_content_with_400_and_a_detail_string(
    start_server: StartServer,
) -> None:
    server = start_server(engine="none")
    files = {"file": ("notes.txt", b"just some text", "text/plain")}
    response = httpx.post(f"{server.base_url}/api/v1/ocr", files=files, timeout=10.0)
    assert response.status_code == 400
    assert isinstance(response.json()["detail"], str)
    assert "Unsupported" in response.json()["detail"]


def test_the_client_refuses_unsupported_content_before_uploading(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    run = contract(engine="none")
    notes = tmp_path / "notes.pdf"  # the name says PDF, the content does not
    notes.write_text("just some text")
    with pytest.raises(InvalidInputError, match="not a file type"):
        run.call("ocr", notes)
    assert server_stats(run.server)["submits"] == 0


def test_the_server_answers_an_invalid_form_with_422_and_a_detail_list(
    start_server: StartServer,
) -> None:
    server = start_server(engine="none")
    files = {"file": ("doc.pdf", pdf_bytes(1), "application/pdf")}
    data = {"page_range": "4-2", "max_pages": "0"}
    response = httpx.post(f"{server.base_url}/api/v1/ocr", files=files, data=data, timeout=10)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert {tuple(item["loc"]) for item in detail} == {
        ("body", "page_range"),
        ("body", "max_pages"),
    }
    assert all(set(item) == {"loc", "msg", "type"} for item in detail)


def test_the_client_refuses_the_same_invalid_options_before_uploading(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    run = contract(engine="none")
    document = write_pdf(tmp_path, "doc.pdf", 1)
    with pytest.raises(InvalidInputError, match="backwards"):
        run.call("ocr", document, page_range="4-2")
    with pytest.raises(InvalidInputError, match="max_pages"):
        run.call("ocr", document, max_pages=0)
    assert server_stats(run.server)["submits"] == 0


# Every option the client lets through is one the server accepts, so a real 422 can only be
# reached by a request the client would never build. These transports rename the multipart
# file field on its way (same length, so Content-Length still holds), as a server that
# expected another field name would see it: the server's real 422 then goes through the
# client's real error mapping.


def _renamed(content: bytes) -> bytes:
    return content.replace(b'name="file"', b'name="blob"', 1)


class _RenameFileField(httpx.HTTPTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            content = _renamed(request.read())
            request = httpx.Request(
                request.method, request.url, headers=request.headers, content=content
            )
        return super().handle_request(request)


class _AsyncRenameFileField(httpx.AsyncHTTPTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            content = _renamed(await request.aread())
            request = httpx.Request(
                request.method, request.url, headers=request.headers, content=content
            )
        return await super().handle_async_request(request)


def test_the_servers_422_reaches_the_client_as_a_request_validation_error(
    contract: Callable[..., Contract], tmp_path: Path
) -> None:
    run = contract(engine="none")
    run.sync_transport = _RenameFileField()
    run.async_transport = _AsyncRenameFileField()
    with pytest.raises(RequestValidationError) as caught:
        run.call("ocr", write_pdf(tmp_path, "doc.pdf", 1))
    assert caught.value.status_code == 422
    assert caught.value.detail == [
        {"loc": ["body", "file"], "msg": "Field required", "type": "missing"}
    ]
    assert server_stats(run.server)["submits"] == 1  # never retried


def test_the_async_client_maps_errors_inside_a_running_loop(
    start_server: StartServer, tmp_path: Path
) -> None:
    # Many coroutines on one loop, one client: each gets its own error or result.
    server = start_server(engine="none")
    good = write_pdf(tmp_path, "good.pdf", 1)

    async def run() -> tuple[object, object]:
        async with AsyncDatalabClient(
            base_url=server.base_url, polling=FAST_POLLING, retry=FAST_RETRY, cache=False
        ) as client:
            return await asyncio.gather(
                client.ocr(good), client.wait("missing-id"), return_exceptions=True
            )

    outcomes = asyncio.run(run())
    assert getattr(outcomes[0], "success", None) is True
    assert isinstance(outcomes[1], NotFoundError)
