"""The command as a real process: the embedded server without a key, and Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from datalab_ocr.server import LocalServer, ServerConfig

from .conftest import CLI, pdf_bytes, read_jsonl, stats, write_pdf

RECEIPT = Path(__file__).resolve().parents[2] / "examples" / "data" / "receipt.png"


def _command() -> list[str]:
    # The installed console script when there is one (it is what users run), else -m.
    script = Path(sys.executable).with_name("datalab-ocr")
    return [str(script)] if script.exists() else [sys.executable, "-m", "datalab_ocr.cli"]


@contextmanager
def _children_take_ctrl_c() -> Iterator[None]:
    """Let processes started inside receive SIGINT, however the test run itself was started.

    A shell starts a background job (``make test &``) with SIGINT ignored, and an ignored
    signal stays ignored across ``exec``: the child would never see the Ctrl-C the test sends.
    A handler, unlike "ignore", is reset to the default by ``exec``, so installing Python's own
    handler here for the moment of the spawn gives the child the disposition a terminal gives.
    """
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_without_a_key_the_embedded_server_is_used_and_the_command_says_so(
    tmp_path: Path,
) -> None:
    out = tmp_path / "receipt.jsonl"
    completed = subprocess.run(
        [*_command(), "ocr", str(RECEIPT), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "DATALAB_OCR_CACHE": "off"},
    )
    assert completed.returncode == 0, completed.stderr
    assert (
        "no DATALAB_API_KEY set: using the embedded local OCR server at http://127.0.0.1:"
        in completed.stderr
    )
    [record] = read_jsonl(out)
    assert record["source"] == str(RECEIPT)
    assert record["page_count"] == 1
    text = record["pages"][0]["text"]
    assert "TOTAL" in text.upper()
    assert "17.70" in text
    assert record["versions"]["tesseract"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_exits_130_and_the_next_run_resumes_the_submitted_job(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATALAB_OCR_CACHE", raising=False)  # the job ledger is the point
    document = write_pdf(tmp_path / "doc.pdf", 2)
    out = tmp_path / "out.jsonl"
    # The job must still be running when the Ctrl-C lands, also on a loaded machine; the
    # second run then waits out what is left of it.
    with LocalServer(ServerConfig(engine="none", latency=6.0)) as server:
        with _children_take_ctrl_c():
            process = subprocess.Popen(
                [*_command(), "ocr", str(document), "--base-url", server.base_url, "-o", str(out)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        try:
            # The first poll comes after the job was recorded in the ledger.
            deadline = time.monotonic() + 60
            while stats(server)["polls"] < 1:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the command never polled its job"
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 130, err
        assert "interrupted: 0 of 1 file finished" in err
        assert "will be resumed" in err
        assert stats(server)["submits"] == 1

        run = cli("ocr", document, "--base-url", server.base_url, "-o", out)
        assert run.code == 0, run.err
        assert stats(server)["submits"] == 1  # polled again, not uploaded again
    [record] = read_jsonl(out)
    assert [page["page_index"] for page in record["pages"]] == [0, 1]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_serve_runs_the_local_server_until_interrupted(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free port; the tiny race with other processes is fine
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with _children_take_ctrl_c():
        process = subprocess.Popen(
            [
                *_command(),
                "serve",
                "--port",
                str(port),
                "--engine",
                "none",
                "--log-level",
                "warning",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()
            try:
                response = httpx.post(
                    f"{base_url}/api/v1/ocr",
                    files={"file": ("doc.pdf", pdf_bytes(1), "application/pdf")},
                    timeout=5.0,
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json()["request_check_url"].startswith(base_url)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
