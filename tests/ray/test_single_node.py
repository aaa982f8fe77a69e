"""The distributed path on one Ray node: rows, errors, resume, documents and the key.

Starting a Ray Data pipeline costs seconds (new worker processes), so each run happens once
per module in a fixture and several tests read what it produced.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from datalab_ocr import DatalabClient, InvalidInputError, PollPolicy, RetryPolicy
from datalab_ocr.ray import (
    ROW_SCHEMA,
    OCRProgress,
    OCRReport,
    read_ocr,
    to_langchain_documents,
    to_llama_index_documents,
)
from tests.reliability.fault_server import JobPlan

from .conftest import API_KEY, DATA, RateLimitedServer

pytestmark = pytest.mark.usefixtures("single_node")

FAST: dict[str, Any] = {
    "retry": RetryPolicy(initial_delay=0.01, max_delay=0.05),
    "polling": PollPolicy(initial_delay=0.01, max_delay=0.05, timeout=20, adaptive=False),
    "cache": False,
}
HOSTED_FILES = [str(DATA / "saltmarsh-observatory.pdf"), str(DATA / "receipt.png")]


@dataclass
class Run:
    rows: list[dict[str, Any]]
    report: OCRReport
    requests: int = 0
    stage: dict[str, Any] | None = None


@pytest.fixture(scope="module")
def server(limited_server: RateLimitedServer) -> RateLimitedServer:
    limited_server.reset()
    limited_server.limit = (1000, 1.0)
    limited_server.plans["saltmarsh-observatory.pdf"] = JobPlan(pages=3)
    return limited_server


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("broken") / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nnot a pdf at all\n%%EOF\n")
    return path


@pytest.fixture(scope="module")
def local_run(broken: Path) -> Run:
    progress = OCRProgress()
    dataset = read_ocr(
        [str(DATA), str(broken)], local=True, errors="collect", progress=progress, concurrency=1
    )
    return Run(dataset.take_all(), progress.report())


@pytest.fixture(scope="module")
def hosted_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("output"))


def _hosted(server: RateLimitedServer, **kwargs: Any) -> Run:
    progress = OCRProgress()
    before = len(server.seen())
    options = {**FAST, "api_key": API_KEY, "base_url": server.base_url, "concurrency": 1}
    rows = read_ocr(HOSTED_FILES, progress=progress, **options, **kwargs).take_all()
    return Run(rows, progress.report(), requests=len(server.seen()) - before)


@pytest.fixture(scope="module")
def hosted_run(server: RateLimitedServer, hosted_output: str) -> Run:
    import ray.data

    # Records what read_ocr asks Ray to run: the arguments of the hosted stage.
    captured: list[dict[str, Any]] = []
    original = ray.data.Dataset.map_batches

    def spy(self: Any, fn: Any, **kwargs: Any) -> Any:
        captured.append(dict(kwargs))
        return original(self, fn, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ray.data.Dataset, "map_batches", spy)
        run = _hosted(server, output=hosted_output)
    (run.stage,) = captured
    return run


def test_a_second_run_in_the_same_session_finds_the_limiter(
    server: RateLimitedServer, hosted_run: Run
) -> None:
    # As in a notebook: the same call again, with work to do (no output store to skip it).
    again = _hosted(server)
    assert _pages(again.rows) == _pages(hosted_run.rows)
    assert again.requests > 0


def _pages(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return sorted((Path(row["source"]).name, row["page_index"]) for row in rows)


def test_local_mode_gives_one_row_per_page_with_lines_and_boxes(local_run: Run) -> None:
    good = [row for row in local_run.rows if not row["error"]]
    assert _pages(good) == [
        ("receipt.png", 0),
        ("saltmarsh-observatory.pdf", 0),
        ("saltmarsh-observatory.pdf", 1),
        ("saltmarsh-observatory.pdf", 2),
        ("scanned-letter.jpg", 0),
    ]
    assert all(set(row) == set(ROW_SCHEMA.names) for row in local_run.rows)
    first = next(r for r in good if r["source"].endswith(".pdf") and r["page_index"] == 0)
    assert "Saltmarsh Tidal Observatory" in first["text"]
    assert first["total_pages"] == 3
    assert all(len(line["bbox"]) == 4 for row in good for line in row["lines"])
    assert "pypdfium2" in json.loads(first["versions"])


def test_collect_gives_a_failed_file_one_row_with_error_and_no_page(
    local_run: Run, broken: Path
) -> None:
    failed = [row for row in local_run.rows if row["error"]]
    assert [row["source"] for row in failed] == [str(broken)]
    assert failed[0]["page_index"] is None
    assert "could not be opened" in failed[0]["error"]


def test_the_report_counts_files_pages_and_failures(local_run: Run) -> None:
    report = local_run.report
    assert (report.files, report.pages, report.failures, report.requests) == (3, 5, 1, 0)
    assert report.pages_per_second > 0


def test_missing_path_is_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_ocr(str(tmp_path / "nowhere"), local=True)


def test_hosted_mode_gives_every_page_once(hosted_run: Run) -> None:
    assert _pages(hosted_run.rows) == [
        ("receipt.png", 0),
        ("saltmarsh-observatory.pdf", 0),
        ("saltmarsh-observatory.pdf", 1),
        ("saltmarsh-observatory.pdf", 2),
    ]
    assert all(row["request_id"] for row in hosted_run.rows)
    assert (hosted_run.report.files, hosted_run.report.requests) == (2, hosted_run.requests)


def test_a_rerun_with_the_same_output_sends_no_request(
    server: RateLimitedServer, hosted_run: Run, hosted_output: str
) -> None:
    again = _hosted(server, output=hosted_output)
    assert again.requests == 0
    assert sorted(r["id"] for r in again.rows) == sorted(r["id"] for r in hosted_run.rows)
    assert again.report.skipped == 2


def test_documents_from_rows_equal_the_reader_and_loader_documents(
    server: RateLimitedServer, hosted_run: Run
) -> None:
    from datalab_ocr.langchain import DatalabOCRLoader
    from datalab_ocr.llama_index import DatalabOCRReader

    path = HOSTED_FILES[0]
    rows = sorted(
        (row for row in hosted_run.rows if row["source"] == path),
        key=lambda row: row["page_index"],
    )
    with DatalabClient(API_KEY, server.base_url, **FAST) as client:
        reader_docs = DatalabOCRReader(client=client).load_data(path)
        loader_docs = DatalabOCRLoader(path, client=client).load()

    def same(document: Any) -> dict[str, Any]:
        # Each job has its own request id; everything else must match exactly.
        return {k: v for k, v in document.metadata.items() if k != "request_id"}

    ours = to_llama_index_documents(rows)
    assert [d.id_ for d in ours] == [d.id_ for d in reader_docs]
    assert [d.text for d in ours] == [d.text for d in reader_docs]
    assert [same(d) for d in ours] == [same(d) for d in reader_docs]
    assert [d.excluded_embed_metadata_keys for d in ours] == [
        d.excluded_embed_metadata_keys for d in reader_docs
    ]
    chains = to_langchain_documents(rows)
    assert [d.id for d in chains] == [d.id for d in loader_docs]
    assert [d.page_content for d in chains] == [d.page_content for d in loader_docs]
    assert [same(d) for d in chains] == [same(d) for d in loader_docs]


def test_the_key_reaches_the_server_but_no_row_report_or_task_argument(
    server: RateLimitedServer, hosted_run: Run
) -> None:
    seen = server.seen()
    assert seen and all(r.headers.get("x-api-key") == API_KEY for r in seen)
    assert API_KEY not in repr(hosted_run.rows) + str(hosted_run.report)
    assert hosted_run.stage is not None
    stage = dict(hosted_run.stage)
    # The one sanctioned place: the workers' environment.
    assert stage.pop("runtime_env") == {"env_vars": {"DATALAB_API_KEY": API_KEY}}
    assert API_KEY.encode() not in pickle.dumps(stage)
    assert API_KEY not in repr(stage)


# Inputs and the result store on S3: a real S3 protocol server (moto) on loopback.


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    moto_server = pytest.importorskip("moto.server")
    import pyarrow.fs as pafs

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        filesystem = pafs.S3FileSystem(
            access_key="test-access",
            secret_key="test-secret",
            endpoint_override=f"{host}:{port}",
            scheme="http",
            region="us-east-1",
            allow_bucket_creation=True,
        )
        filesystem.create_dir("ingest")
        for path in HOSTED_FILES:
            with filesystem.open_output_stream(f"ingest/in/{Path(path).name}") as out:
                out.write(Path(path).read_bytes())
        with filesystem.open_output_stream("ingest/in/notes.txt") as out:
            out.write(b"not a document: directories list supported types only")
        yield filesystem
    finally:
        server.stop()


def test_s3_inputs_and_output_give_every_page_and_a_rerun_sends_nothing(
    server: RateLimitedServer, s3: Any
) -> None:
    kwargs = {"filesystem": s3, "output": "ingest/done", "output_filesystem": s3}
    before = len(server.seen())
    options = {**FAST, "api_key": API_KEY, "base_url": server.base_url, "concurrency": 1}
    first = read_ocr("ingest/in", **options, **kwargs).take_all()
    sent = len(server.seen()) - before

    again = read_ocr("ingest/in", **options, **kwargs).take_all()

    assert _pages(first) == [
        ("receipt.png", 0),
        ("saltmarsh-observatory.pdf", 0),
        ("saltmarsh-observatory.pdf", 1),
        ("saltmarsh-observatory.pdf", 2),
    ]
    assert all(row["source"].startswith("ingest/in/") for row in first)
    assert sent > 0 and len(server.seen()) - before == sent  # the re-run read the store
    assert sorted(r["id"] for r in again) == sorted(r["id"] for r in first)
    import pyarrow.fs as pafs

    stored = s3.get_file_info(pafs.FileSelector("ingest/done", recursive=True))
    assert len([info for info in stored if info.path.endswith(".parquet")]) == 2
    assert not [info for info in stored if ".partial-" in info.path]
