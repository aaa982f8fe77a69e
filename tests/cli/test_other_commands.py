"""``datalab-ocr cache``, ``serve`` and ``--version``."""

from __future__ import annotations

from pathlib import Path

import pytest

from datalab_ocr import __version__
from datalab_ocr.cli import build_parser
from datalab_ocr.server import LocalServer
from datalab_ocr.server.cli import config_from_args

from .conftest import CLI, read_jsonl, stats, write_pdf


@pytest.fixture
def cache_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Turn the result cache back on, in this test's folder; the cache file's path."""
    monkeypatch.delenv("DATALAB_OCR_CACHE", raising=False)
    return tmp_path / "cache" / "results.sqlite3"


def test_a_second_run_answers_from_the_cache_without_a_request(
    cli: CLI, server: LocalServer, tmp_path: Path, cache_on: Path
) -> None:
    document = write_pdf(tmp_path / "doc.pdf", 2)
    out = tmp_path / "out.jsonl"
    assert cli("ocr", document, "--base-url", server.base_url, "-o", out).code == 0
    first = read_jsonl(out)[0]
    requests = stats(server)["requests"]
    assert cli("ocr", document, "--base-url", server.base_url, "-o", out).code == 0
    second = read_jsonl(out)[0]
    assert second["from_cache"] is True
    assert second["request_id"] == first["request_id"]
    assert second["pages"] == first["pages"]
    assert stats(server)["requests"] == requests
    assert cache_on.exists()


def test_no_cache_neither_reads_nor_writes_the_cache(
    cli: CLI, server: LocalServer, tmp_path: Path, cache_on: Path
) -> None:
    document = write_pdf(tmp_path / "doc.pdf")
    assert cli("ocr", document, "--base-url", server.base_url, "--no-cache").code == 0
    assert not cache_on.exists()


def test_cache_info_shows_path_results_pending_jobs_and_size(
    cli: CLI, server: LocalServer, tmp_path: Path, cache_on: Path
) -> None:
    assert cli("ocr", write_pdf(tmp_path / "doc.pdf"), "--base-url", server.base_url).code == 0
    run = cli("cache", "info")
    assert run.code == 0
    assert f"path:          {cache_on}" in run.out
    assert "results:       1" in run.out
    assert "pending jobs:  0" in run.out
    assert "size:" in run.out
    assert "kB" in run.out


def test_cache_info_creates_no_cache_file(cli: CLI, cache_on: Path) -> None:
    run = cli("cache", "info")
    assert run.code == 0
    assert "results:       0" in run.out
    assert "no cache file yet" in run.out
    assert not cache_on.exists()


def test_cache_info_says_when_caching_is_off(cli: CLI) -> None:
    # tests/conftest.py sets DATALAB_OCR_CACHE=off for every test.
    assert "caching is off (DATALAB_OCR_CACHE=off)" in cli("cache", "info").out


def test_cache_clear_removes_every_result(
    cli: CLI, server: LocalServer, tmp_path: Path, cache_on: Path
) -> None:
    for name in ("a.pdf", "b.pdf"):
        document = write_pdf(tmp_path / name, 1 if name == "a.pdf" else 2)
        assert cli("ocr", document, "--base-url", server.base_url).code == 0
    run = cli("cache", "clear")
    assert run.code == 0
    assert f"removed 2 results and 0 pending jobs from {cache_on}" in run.out
    assert "results:       0" in cli("cache", "info").out


def test_cache_clear_without_a_cache_file_is_fine(cli: CLI, cache_on: Path) -> None:
    run = cli("cache", "clear")
    assert run.code == 0
    assert "nothing to clear" in run.out
    assert not cache_on.exists()


def test_version(cli: CLI) -> None:
    run = cli("--version")
    assert run.code == 0
    assert run.out.strip() == f"datalab-ocr {__version__}"


def test_no_command_is_a_usage_error(cli: CLI) -> None:
    run = cli()
    assert run.code == 2
    assert "COMMAND" in run.err


def test_serve_takes_the_servers_own_options() -> None:
    args = build_parser().parse_args(
        ["serve", "--port", "8123", "--engine", "none", "--workers", "1", "--rate-limit", "10/1"]
    )
    assert (args.command, args.port, args.host) == ("serve", 8123, "127.0.0.1")
    config = config_from_args(args)
    assert (config.engine, config.workers, config.rate_limit_requests) == ("none", 1, 10)


def test_the_ocr_polling_options_become_the_clients_poll_policy() -> None:
    from datalab_ocr.cli import _polling, build_parser

    args = build_parser().parse_args(
        ["ocr", "x.pdf", "--fixed-polling", "--job-timeout", "30", "--poll-initial", "2"]
    )

    policy = _polling(args)
    assert (policy.adaptive, policy.timeout, policy.initial_delay) == (False, 30.0, 2.0)
