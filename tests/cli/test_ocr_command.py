"""``datalab-ocr ocr``: output, options, directories, error policies and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from datalab_ocr.cli import expand_paths
from datalab_ocr.server import LocalServer, ServerConfig

from .conftest import CLI, read_jsonl, stats, write_pdf, write_png


def test_each_file_gets_a_summary_line_and_success_exits_0(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    one = write_pdf(tmp_path / "one.pdf", 1)
    two = write_pdf(tmp_path / "two.pdf", 2)
    run = cli("ocr", one, two, "--base-url", server.base_url)
    assert run.code == 0
    lines = sorted(run.out.splitlines())
    assert len(lines) == 2
    assert lines[0].startswith(f"ok      {one}: 1 page,")
    assert lines[1].startswith(f"ok      {two}: 2 pages,")
    assert "2 files OCRed, none failed" in run.err


def test_out_writes_one_json_line_per_file(cli: CLI, server: LocalServer, tmp_path: Path) -> None:
    document = write_pdf(tmp_path / "doc.pdf", 2)
    out = tmp_path / "results.jsonl"
    run = cli("ocr", document, "--base-url", server.base_url, "--out", out)
    assert run.code == 0
    assert run.out == ""
    [record] = read_jsonl(out)
    assert set(record) == {
        "source",
        "request_id",
        "page_count",
        "pages",
        "versions",
        "from_cache",
    }
    assert record["source"] == str(document)
    assert record["request_id"]
    assert record["page_count"] == 2
    assert record["pages"] == [
        {"page_index": 0, "page": 1, "text": "Synthetic page 1", "mean_confidence": 1.0},
        {"page_index": 1, "page": 2, "text": "Synthetic page 2", "mean_confidence": 1.0},
    ]
    assert record["versions"] == {"engine": "none"}
    assert record["from_cache"] is False


def test_out_dash_writes_the_json_lines_to_stdout(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    run = cli("ocr", write_pdf(tmp_path / "doc.pdf"), "--base-url", server.base_url, "-o", "-")
    assert run.code == 0
    assert '"page_index": 0' in run.out
    assert len(run.out.splitlines()) == 1


def test_page_range_and_max_pages_reach_the_service(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    document = write_pdf(tmp_path / "doc.pdf", 6)
    out = tmp_path / "out.jsonl"
    assert (
        cli("ocr", document, "--base-url", server.base_url, "--page-range", "1,3-4", "-o", out).code
        == 0
    )
    assert [page["page_index"] for page in read_jsonl(out)[0]["pages"]] == [1, 3, 4]
    assert (
        cli("ocr", document, "--base-url", server.base_url, "--max-pages", "2", "-o", out).code == 0
    )
    assert [page["page_index"] for page in read_jsonl(out)[0]["pages"]] == [0, 1]


def test_directories_expand_to_supported_files_sorted_recursively(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    expected = [
        write_pdf(folder / "a.pdf"),
        write_png(folder / "b.png"),
        write_pdf(folder / "sub" / "c.PDF"),  # extensions match case-insensitively
    ]
    (folder / "notes.txt").write_text("not a document")
    write_pdf(folder / ".git" / "hidden.pdf")
    write_pdf(folder / ".hidden.pdf")
    assert expand_paths([folder]) == expected
    assert expand_paths([folder], "*.pdf") == [folder / "a.pdf"]


def test_a_file_named_twice_or_inside_a_named_directory_is_taken_once(tmp_path: Path) -> None:
    document = write_pdf(tmp_path / "docs" / "a.pdf")
    assert expand_paths([document, tmp_path / "docs", document]) == [document]


def test_a_directory_is_ocred_file_by_file(cli: CLI, server: LocalServer, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_pdf(folder / "a.pdf")
    write_pdf(folder / "sub" / "b.pdf", 2)
    (folder / "notes.txt").write_text("not a document")
    out = tmp_path / "out.jsonl"
    run = cli("ocr", folder, "--base-url", server.base_url, "--concurrency", "1", "-o", out)
    assert run.code == 0
    records = read_jsonl(out)
    assert [record["source"] for record in records] == [
        str(folder / "a.pdf"),
        str(folder / "sub" / "b.pdf"),
    ]


def test_a_missing_path_is_a_usage_error_and_nothing_is_sent(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    document = write_pdf(tmp_path / "doc.pdf")
    run = cli("ocr", document, tmp_path / "missing.pdf", "--base-url", server.base_url)
    assert run.code == 2
    assert "no such file or directory" in run.err
    assert "missing.pdf" in run.err
    assert stats(server)["submits"] == 0


def test_a_directory_without_supported_files_is_a_usage_error(cli: CLI, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a document")
    run = cli("ocr", tmp_path, "--base-url", "http://127.0.0.1:9")
    assert run.code == 2
    assert "no supported files" in run.err


@pytest.mark.parametrize(
    "arguments",
    [
        ["--page-range", "4-2"],
        ["--max-pages", "0"],
        ["--concurrency", "none"],
        ["--errors", "ignore"],
        ["--local", "--base-url", "http://127.0.0.1:9"],
    ],
    ids=["reversed-range", "zero-pages", "bad-concurrency", "bad-policy", "local-and-url"],
)
def test_bad_options_are_usage_errors(cli: CLI, tmp_path: Path, arguments: list[str]) -> None:
    run = cli("ocr", write_pdf(tmp_path / "doc.pdf"), *arguments)
    assert run.code == 2
    assert "error:" in run.err


def test_an_unwritable_out_file_is_a_usage_error(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    out = tmp_path / "no" / "such" / "folder" / "out.jsonl"
    run = cli("ocr", write_pdf(tmp_path / "doc.pdf"), "--base-url", server.base_url, "-o", out)
    assert run.code == 2
    assert "cannot write" in run.err


def _mixed_batch(tmp_path: Path) -> list[Path]:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a document")
    return [write_pdf(tmp_path / "a.pdf"), bad, write_pdf(tmp_path / "b.pdf")]


def test_failures_are_collected_by_default_listed_on_stderr_and_exit_1(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    run = cli("ocr", *_mixed_batch(tmp_path), "--base-url", server.base_url, "-o", out)
    assert run.code == 1
    records = {Path(record["source"]).name: record for record in read_jsonl(out)}
    assert set(records) == {"a.pdf", "notes.txt", "b.pdf"}
    error = records["notes.txt"]["error"]
    assert error["type"] == "InvalidInputError"
    assert "not a file type" in error["message"]
    assert error["request_id"] is None
    assert "1 of 3 files failed" in run.err
    assert f"{tmp_path / 'notes.txt'}: InvalidInputError:" in run.err


def test_without_out_a_failure_gets_its_own_summary_line(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    run = cli("ocr", *_mixed_batch(tmp_path), "--base-url", server.base_url)
    assert run.code == 1
    assert f"FAILED  {tmp_path / 'notes.txt'}: InvalidInputError" in run.out
    assert run.out.count("ok      ") == 2


def test_errors_skip_leaves_failures_out_of_the_output_but_still_reports_them(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    files = _mixed_batch(tmp_path)
    run = cli("ocr", *files, "--base-url", server.base_url, "-o", out, "--errors", "skip")
    assert run.code == 1
    assert sorted(Path(record["source"]).name for record in read_jsonl(out)) == ["a.pdf", "b.pdf"]
    assert "notes.txt: InvalidInputError" in run.err


def test_errors_raise_stops_at_the_first_failure(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    files = _mixed_batch(tmp_path)
    run = cli("ocr", *files, "--base-url", server.base_url, "-o", out, "--errors", "raise")
    assert run.code == 1
    assert "stopped at the first failure (--errors raise)" in run.err
    assert "notes.txt: InvalidInputError" in run.err
    assert any("error" in record for record in read_jsonl(out))


def test_a_failed_job_is_recorded_with_its_request_id(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    document = write_pdf(tmp_path / "two.pdf", 2)
    # With object streams the client cannot count the pages, so the range is sent and the
    # job fails on the server.
    document.write_bytes(
        document.read_bytes().replace(b"%PDF-1.4\n", b"%PDF-1.5\n% /Type /ObjStm\n")
    )
    run = cli("ocr", document, "--base-url", server.base_url, "--page-range", "5", "-o", out)
    assert run.code == 1
    [record] = read_jsonl(out)
    assert record["error"]["type"] == "JobFailedError"
    assert record["error"]["request_id"]
    assert f"(request {record['error']['request_id']})" in run.err


def test_quiet_prints_no_summary_lines_but_still_reports_failures(
    cli: CLI, server: LocalServer, tmp_path: Path
) -> None:
    run = cli("ocr", *_mixed_batch(tmp_path), "--base-url", server.base_url, "--quiet")
    assert run.code == 1
    assert run.out == ""
    assert "1 of 3 files failed" in run.err


def test_the_api_key_is_used_but_never_echoed(cli: CLI, tmp_path: Path) -> None:
    key = "cli-secret-key-93f1"
    with LocalServer(ServerConfig(engine="none", api_key=key)) as keyed:
        document = write_pdf(tmp_path / "doc.pdf")
        good = cli("ocr", document, "--base-url", keyed.base_url, "--api-key", key, "-v")
        wrong = cli("ocr", document, "--base-url", keyed.base_url, "--api-key", "not-" + key)
    assert good.code == 0
    assert wrong.code == 1
    assert "AuthenticationError" in wrong.err
    for run in (good, wrong):
        assert key not in run.out
        assert key not in run.err


def test_the_key_may_come_from_the_environment(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "cli-env-key-1c2d"
    monkeypatch.setenv("DATALAB_API_KEY", key)
    with LocalServer(ServerConfig(engine="none", api_key=key)) as keyed:
        monkeypatch.setenv("DATALAB_BASE_URL", keyed.base_url)
        run = cli("ocr", write_pdf(tmp_path / "doc.pdf"))
    assert run.code == 0
    assert "embedded local OCR server" not in run.err
