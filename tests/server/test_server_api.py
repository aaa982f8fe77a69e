"""The HTTP contract of the local server, spoken over loopback with plain httpx.

Most tests use ``engine="none"`` (synthetic pages, no worker processes) so they take
milliseconds; the ones that need real documents use the shared OCR server.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from datalab_ocr.server import LocalServer
from datalab_ocr.server.office import find_soffice

from .server_helpers import image_bytes, numbered_pdf, run_job, submit, wait_complete

StartServer = Callable[..., LocalServer]


def test_submit_answers_at_once_with_a_check_url_on_the_servers_own_port(
    start_server: StartServer, client: httpx.Client
) -> None:
    # Long enough that the check right after still finds the job running on a busy machine.
    server = start_server(engine="none", latency=1.0)
    response = submit(client, server.base_url, numbered_pdf(1))
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["error"] is None
    assert body["versions"] == {}
    assert body["request_check_url"] == f"{server.base_url}/api/v1/ocr/{body['request_id']}"

    assert client.get(body["request_check_url"]).json() == {"status": "processing"}
    result = wait_complete(client, body["request_check_url"])
    assert result["status"] == "complete"
    assert result["success"] is True
    assert result["page_count"] == 1
    assert result["pages"][0]["page"] == 1


def test_the_file_may_be_sent_as_file_dot_zero(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none")
    result = run_job(client, server.base_url, numbered_pdf(1), field="file.0", langs="English")
    assert result["success"] is True


def test_identical_requests_answer_from_the_cache_unless_skip_cache(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none")
    document = numbered_pdf(2)
    run_job(client, server.base_url, document)
    run_job(client, server.base_url, document)
    assert client.get(f"{server.base_url}/_local/stats").json()["cache_hits"] == 1
    run_job(client, server.base_url, document, skip_cache="true")
    run_job(client, server.base_url, document, max_pages="1")  # other options, other key
    assert client.get(f"{server.base_url}/_local/stats").json()["cache_hits"] == 1


def test_requests_without_the_right_api_key_get_401(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none", api_key="secret-key")
    url = f"{server.base_url}/api/v1/ocr"
    files = {"file": ("a.pdf", numbered_pdf(1), "application/pdf")}
    missing = client.post(url, files=files)
    wrong = client.post(url, files=files, headers={"X-API-Key": "guess"})
    assert missing.status_code == wrong.status_code == 401
    assert "API key" in missing.json()["detail"]
    right = client.post(url, files=files, headers={"X-API-Key": "secret-key"})
    assert right.status_code == 200
    check_url = right.json()["request_check_url"]
    assert client.get(check_url).status_code == 401
    assert client.get(check_url, headers={"X-API-Key": "secret-key"}).status_code == 200


def test_unknown_request_ids_get_404(start_server: StartServer, client: httpx.Client) -> None:
    server = start_server(engine="none")
    response = client.get(f"{server.base_url}/api/v1/ocr/no-such-id")
    assert response.status_code == 404
    assert isinstance(response.json()["detail"], str)


def test_results_are_gone_after_the_ttl(start_server: StartServer, client: httpx.Client) -> None:
    # A lifetime a loaded machine cannot outrun before the first poll; expiry counts from
    # completion, which came before wait_complete returned, so this much later it is gone.
    ttl = 2.0
    server = start_server(engine="none", result_ttl=ttl)
    response = submit(client, server.base_url, numbered_pdf(1))
    check_url = response.json()["request_check_url"]
    wait_complete(client, check_url)
    time.sleep(ttl + 0.05)
    assert client.get(check_url).status_code == 404


def test_files_over_the_upload_limit_get_413(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none", max_upload_bytes=10_000)
    response = submit(client, server.base_url, b"%PDF-1.4\n" + b"0" * 20_000)
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


def test_bodies_far_over_the_limit_are_refused_before_parsing(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none", max_upload_bytes=10_000)
    response = submit(client, server.base_url, b"%PDF-1.4\n" + b"0" * 1_200_000)
    assert response.status_code == 413


def test_an_invalid_page_range_gets_422_with_a_detail_list(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none")
    response = submit(client, server.base_url, numbered_pdf(1), page_range="2-a")
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "page_range"]
    assert problem["type"] == "value_error"
    assert "page range" in problem["msg"]


def test_a_request_without_a_file_gets_422(start_server: StartServer, client: httpx.Client) -> None:
    server = start_server(engine="none")
    response = client.post(f"{server.base_url}/api/v1/ocr", data={"max_pages": "1"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "file"]


def test_empty_and_unsupported_files_get_400(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none")
    empty = submit(client, server.base_url, b"")
    text = submit(client, server.base_url, b"plain words", "notes.txt", "text/plain")
    assert empty.status_code == text.status_code == 400
    assert "empty" in empty.json()["detail"]
    assert "Unsupported" in text.json()["detail"]


def test_a_full_queue_answers_429_with_retry_after(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none", workers=1, queue_size=1, latency=5.0)
    for _ in range(2):
        assert submit(client, server.base_url, numbered_pdf(1)).status_code == 200
    refused = submit(client, server.base_url, numbered_pdf(1))
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "busy" in refused.json()["detail"]


def test_the_rate_limit_counts_submits_and_polls(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none", rate_limit_requests=3, rate_limit_window=30.0)
    check_url = submit(client, server.base_url, numbered_pdf(1)).json()["request_check_url"]
    assert client.get(check_url).status_code == 200
    assert client.get(check_url).status_code == 200
    refused = client.get(check_url)
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Rate limit exceeded")
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert submit(client, server.base_url, numbered_pdf(1)).status_code == 429
    stats = client.get(f"{server.base_url}/_local/stats").json()
    assert stats["rate_limited"] == 2
    assert stats["submits"] == 2  # attempts, refused ones included
    assert stats["polls"] == 3
    assert stats["requests"] == 5


def test_simulated_latency_holds_each_job_at_least_that_long(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none", latency=0.2, page_latency=0.1)
    started = time.monotonic()
    result = run_job(client, server.base_url, numbered_pdf(5), page_range="0-2")
    assert time.monotonic() - started >= 0.2 + 0.1 * 3
    assert [page["page"] for page in result["pages"]] == [1, 2, 3]


def test_synthetic_pages_follow_the_requested_pages(
    start_server: StartServer, client: httpx.Client
) -> None:
    server = start_server(engine="none")
    result = run_job(client, server.base_url, numbered_pdf(6), page_range="1,4-5")
    assert [page["page"] for page in result["pages"]] == [2, 5, 6]


@pytest.mark.ocr
def test_page_range_pages_keep_their_number_in_the_original_document(
    ocr_server: LocalServer, client: httpx.Client
) -> None:
    result = run_job(client, ocr_server.base_url, numbered_pdf(5), page_range="0,2-3")
    assert result["page_count"] == 3
    assert [page["page"] for page in result["pages"]] == [1, 3, 4]
    texts = [page["text_lines"][0]["text"] for page in result["pages"]]
    assert texts == ["This is page 0", "This is page 2", "This is page 3"]
    assert all("page_index" not in page for page in result["pages"])


@pytest.mark.ocr
def test_max_pages_keeps_the_first_pages(ocr_server: LocalServer, client: httpx.Client) -> None:
    result = run_job(client, ocr_server.base_url, numbered_pdf(4), max_pages="2")
    assert [page["page"] for page in result["pages"]] == [1, 2]
    assert result["versions"]["pypdfium2"]


@pytest.mark.ocr
def test_a_page_range_past_the_end_fails_the_job(
    ocr_server: LocalServer, client: httpx.Client
) -> None:
    result = run_job(client, ocr_server.base_url, numbered_pdf(2), page_range="5-6")
    assert result["success"] is False
    assert "no page" in result["error"]


@pytest.mark.ocr
def test_a_corrupt_pdf_fails_its_job_and_the_server_keeps_working(
    ocr_server: LocalServer, client: httpx.Client
) -> None:
    broken = run_job(client, ocr_server.base_url, b"%PDF-1.7\n this is not a pdf at all")
    assert broken["status"] == "complete"
    assert broken["success"] is False
    assert "PDF" in broken["error"]
    assert run_job(client, ocr_server.base_url, numbered_pdf(1))["success"] is True


@pytest.mark.ocr
def test_a_decompression_bomb_image_fails_its_job(
    ocr_server: LocalServer, client: httpx.Client
) -> None:
    bomb = image_bytes(Image.new("1", (6000, 6000), 1))  # 36 Mpx in a few kB
    result = run_job(
        client, ocr_server.base_url, bomb, filename="bomb.png", content_type="image/png"
    )
    assert result["success"] is False
    assert "decompression bomb" in result["error"]


@pytest.mark.ocr
@pytest.mark.skipif(find_soffice() is not None, reason="LibreOffice is installed here")
def test_office_files_without_libreoffice_fail_with_how_to_install_it(
    ocr_server: LocalServer, client: httpx.Client
) -> None:
    docx_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    result = run_job(
        client,
        ocr_server.base_url,
        b"PK\x03\x04 not really a docx",
        filename="report.docx",
        content_type=docx_type,
    )
    assert result["success"] is False
    assert "apt-get install libreoffice" in result["error"]
