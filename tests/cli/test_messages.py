"""What the ``ocr`` command says when it stops or cannot start: true, and in its own terms."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from datalab_ocr.server import LocalServer, ServerConfig

from .conftest import CLI, stats, write_pdf


def test_errors_raise_on_a_file_refused_before_upload_promises_no_resume(
    cli: CLI, server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATALAB_OCR_CACHE", "on")  # the default: a ledger that could resume
    bad = tmp_path / "notes.txt"
    bad.write_text("not a document")
    files = [bad, write_pdf(tmp_path / "a.pdf"), write_pdf(tmp_path / "b.pdf")]

    run = cli("ocr", *files, "--base-url", server.base_url, "--errors", "raise")

    assert run.code == 1
    assert "stopped at the first failure (--errors raise)" in run.err
    assert "resume" not in run.err
    assert stats(server)["submits"] == 0


def test_local_without_the_server_extra_speaks_of_the_option(tmp_path: Path) -> None:
    document = write_pdf(tmp_path / "a.pdf")
    script = (
        "import sys\n"
        "sys.modules['datalab_ocr.server'] = None  # as without the server extra\n"
        "from datalab_ocr.cli import main\n"
        f"raise SystemExit(main(['ocr', {str(document)!r}, '--local']))\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 2
    assert "--local needs the local server" in done.stderr
    assert "pip install 'datalab-ocr[server]'" in done.stderr
    assert "local=True" not in done.stderr


def test_a_page_range_past_the_end_of_the_file_is_not_uploaded(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    document = write_pdf(tmp_path / "three.pdf", 3)

    run = cli("ocr", document, "--base-url", server.base_url, "--page-range", "7")

    assert run.code == 1
    assert "page_range '7' selects no page of" in run.err
    assert "which has 3 pages (0-based: 0-2); nothing was uploaded" in run.err
    assert stats(server)["submits"] == 0


def test_an_interrupted_local_run_says_its_unfinished_files_are_done_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The embedded server stops with the command, and its jobs with it: promising a resume
    # there would be false (the next run forgets them and submits again).
    from datalab_ocr import DatalabClient
    from datalab_ocr.cli import _interrupted

    monkeypatch.setenv("DATALAB_OCR_CACHE", "on")
    monkeypatch.setenv("DATALAB_OCR_CACHE_DIR", str(tmp_path / "cache"))
    with DatalabClient(api_key="k", base_url="http://127.0.0.1:9", cache=True) as client:
        _interrupted(client, 3, 10, embedded=True)
        embedded = capsys.readouterr().err
        _interrupted(client, 3, 10, embedded=False)
        external = capsys.readouterr().err

    assert "interrupted: 3 of 10 files finished" in embedded
    assert "OCRed again by the next run" in embedded
    assert "will be resumed" not in embedded
    assert "will be resumed" in external


def test_no_key_for_the_hosted_api_names_the_options_to_use(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATALAB_API_KEY", raising=False)
    document = write_pdf(tmp_path / "doc.pdf", 1)

    run = cli("ocr", document, "--base-url", "https://www.datalab.to")

    assert run.code == 2
    assert "no API key for https://www.datalab.to" in run.err
    assert "--api-key" in run.err
    assert "--local" in run.err
    assert "local=True" not in run.err
    assert "api_key=" not in run.err


def test_a_job_past_its_deadline_is_collected_by_running_the_command_again(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATALAB_OCR_CACHE", "on")
    document = write_pdf(tmp_path / "a.pdf")
    with LocalServer(ServerConfig(engine="none", latency=1.5)) as slow:
        late = cli("ocr", document, "--base-url", slow.base_url, "--job-timeout", "0.3")
        again = cli("ocr", document, "--base-url", slow.base_url)
        submits = stats(slow)["submits"]

    assert late.code == 1
    assert "1 of 1 file failed:" in late.err
    assert "did not complete within the job deadline of 0.3 s (--job-timeout)" in late.err
    assert "run the same command again within the hour" in late.err
    assert "wait()" not in late.err  # the library's advice, which a CLI user cannot follow
    assert again.code == 0
    assert submits == 1  # the second run collected the first run's job
