"""Configuration: argument, then environment, then default; and the key kept secret."""

from __future__ import annotations

import logging
import pickle
import traceback
from pathlib import Path

import httpx
import pytest

from datalab_ocr import (
    AsyncDatalabClient,
    AuthenticationError,
    ConfigurationError,
    DatalabClient,
)

from .conftest import API_KEY, Harness, status, submitted


def test_missing_key_for_the_hosted_api_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="DATALAB_API_KEY"):
        DatalabClient()


def test_missing_key_is_refused_by_the_async_client_too() -> None:
    with pytest.raises(ConfigurationError, match="local=True"):
        AsyncDatalabClient()


def test_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATALAB_API_KEY", "env-key")
    monkeypatch.setenv("DATALAB_BASE_URL", "http://127.0.0.1:9000/")

    with DatalabClient() as client:
        assert client.base_url == "http://127.0.0.1:9000/"
        assert client._connection.api_key == "env-key"


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATALAB_API_KEY", "env-key")
    monkeypatch.setenv("DATALAB_BASE_URL", "http://127.0.0.1:9000")

    with DatalabClient(api_key="arg-key", base_url="https://ocr.example.com/prefix") as client:
        assert client.base_url == "https://ocr.example.com/prefix"
        assert client._connection.api_key == "arg-key"


def test_environment_is_read_when_the_client_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATALAB_API_KEY", "first")
    client = DatalabClient()
    monkeypatch.setenv("DATALAB_API_KEY", "second")

    assert client._connection.api_key == "first"
    client.close()


def test_a_self_hosted_server_needs_no_key() -> None:
    with DatalabClient(base_url="http://127.0.0.1:8000") as client:
        assert client._connection.api_key is None


@pytest.mark.parametrize("url", ["ftp://x.example", "not a url", "/relative", "https://h/?q=1"])
def test_a_bad_base_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="base URL"):
        DatalabClient(api_key="k", base_url=url)


def test_local_cannot_be_combined_with_a_base_url() -> None:
    with pytest.raises(ConfigurationError, match="local=True"):
        DatalabClient(local=True, base_url="http://127.0.0.1:1")


def test_a_prefixed_base_url_keeps_its_path(pdf_file: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return submitted("p1")

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with DatalabClient(base_url="https://ocr.example.com/datalab/", http_client=http) as client:
        client.submit(pdf_file)

    assert seen == ["/datalab/api/v1/ocr"]


def test_repr_shows_no_key() -> None:
    for client in (DatalabClient(api_key=API_KEY), AsyncDatalabClient(api_key=API_KEY)):
        assert API_KEY not in repr(client)
        assert API_KEY not in str(client)
        assert "api_key=set" in repr(client)


def test_errors_and_tracebacks_show_no_key(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [status(401, "Invalid API key")]

    with pytest.raises(AuthenticationError) as caught:
        harness.call("ocr", pdf_file)

    text = "".join(traceback.format_exception(caught.value))
    assert API_KEY not in text
    assert API_KEY not in repr(caught.value)
    assert API_KEY not in pickle.dumps(caught.value).decode("latin-1")


def test_errors_survive_pickling_with_their_context(harness: Harness, pdf_file: Path) -> None:
    harness.service.submits = [status(401, "Invalid API key")]

    with pytest.raises(AuthenticationError) as caught:
        harness.call("ocr", pdf_file)

    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is AuthenticationError
    assert (copy.filename, copy.status_code, str(copy)) == (
        str(pdf_file),
        401,
        str(caught.value),
    )


def test_debug_logs_show_no_key(
    harness: Harness, pdf_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness.service.submits = [status(503), submitted()]
    harness.service.polls = [status(500), httpx.Response(200, json={"status": "complete"})]

    with caplog.at_level(logging.DEBUG):
        harness.call("ocr", pdf_file)

    assert caplog.records, "expected log lines to inspect"
    assert API_KEY not in caplog.text


def test_key_is_not_sent_to_another_origin_even_if_asked(pdf_file: Path) -> None:
    from datalab_ocr._flow import Send

    client = DatalabClient(api_key=API_KEY)
    import contextlib

    with contextlib.ExitStack() as files:
        foreign = client._build_request(
            client._http, Send("GET", "https://elsewhere.example/x", action="poll"), files
        )
        own = client._build_request(
            client._http, Send("GET", "https://www.datalab.to/x", action="poll"), files
        )
    assert "x-api-key" not in foreign.headers
    assert own.headers["x-api-key"] == API_KEY
    client.close()


def test_a_passed_in_http_client_is_not_closed() -> None:
    http = httpx.Client()
    with DatalabClient(api_key="k", http_client=http):
        pass
    assert not http.is_closed
    http.close()


def test_a_client_is_built_even_where_no_cache_folder_can_be_made(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DATALAB_OCR_CACHE", "on")
    monkeypatch.setenv("DATALAB_OCR_CACHE_DIR", str(blocker / "cache"))

    with DatalabClient(api_key="k") as client:
        assert client.cache is not None
