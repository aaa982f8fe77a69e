"""Failed files in the reader and the loader: raised, skipped or collected, never silent."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from datalab_ocr import AsyncDatalabClient, DatalabClient, InvalidInputError, JobFailedError
from datalab_ocr.langchain import DatalabOCRLoader
from datalab_ocr.llama_index import DatalabOCRReader

from .conftest import FakeDatalab


def test_the_reader_raises_the_files_own_error_by_default(
    client: DatalabClient, files: dict[str, Path], service: FakeDatalab
) -> None:
    service.failing = {"letter.pdf"}

    with pytest.raises(JobFailedError, match="Could not read file") as caught:
        DatalabOCRReader(client=client).load_data(list(files.values()))

    assert caught.value.filename == str(files["letter.pdf"])


def test_the_reader_collects_failures_and_returns_every_other_page(
    client: DatalabClient, files: dict[str, Path], service: FakeDatalab
) -> None:
    service.failing = {"letter.pdf"}
    reader = DatalabOCRReader(client=client, errors="collect")

    documents = reader.load_data(list(files.values()))

    assert {d.metadata["file_name"] for d in documents} == {"report.pdf", "scan.png"}
    [failure] = reader.failures
    assert failure.source == str(files["letter.pdf"])
    assert isinstance(failure.error, JobFailedError)
    assert failure.request_id is not None


def test_the_reader_skips_a_bad_file_with_a_warning(
    client: DatalabClient,
    files: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    empty = tmp_path / "empty.pdf"
    empty.touch()
    reader = DatalabOCRReader(client=client, errors="skip")

    with caplog.at_level(logging.WARNING):
        documents = reader.load_data([files["report.pdf"], empty])

    assert {d.metadata["file_name"] for d in documents} == {"report.pdf"}
    assert "empty.pdf" in caplog.text
    assert reader.failures == []


def test_a_bad_file_stops_a_raising_load_before_anything_is_uploaded(
    client: DatalabClient, files: dict[str, Path], tmp_path: Path, service: FakeDatalab
) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        DatalabOCRLoader([files["report.pdf"], tmp_path / "gone.pdf"], client=client).load()

    assert service.submitted_names == []


def test_the_loader_collects_failures_beside_the_documents(
    client: DatalabClient, files: dict[str, Path], service: FakeDatalab
) -> None:
    service.failing = {"scan.png"}
    loader = DatalabOCRLoader(list(files.values()), client=client, errors="collect")

    documents = loader.load()

    assert {Path(d.metadata["source"]).name for d in documents} == {"report.pdf", "letter.pdf"}
    assert [Path(f.source).name for f in loader.failures] == ["scan.png"]


@pytest.mark.anyio
async def test_async_loading_collects_failures_too(
    async_client: AsyncDatalabClient, files: dict[str, Path], service: FakeDatalab
) -> None:
    service.failing = {"report.pdf"}
    loader = DatalabOCRLoader(list(files.values()), async_client=async_client, errors="collect")

    documents = [d async for d in loader.alazy_load()]

    assert {Path(d.metadata["source"]).name for d in documents} == {"letter.pdf", "scan.png"}
    assert [Path(f.source).name for f in loader.failures] == ["report.pdf"]


def test_an_unknown_policy_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="errors must be"):
        DatalabOCRLoader("x.pdf", errors="ignore", local=False, base_url="http://127.0.0.1:1")  # type: ignore[arg-type]


def test_a_file_that_fails_on_the_service_is_logged_once(
    client: DatalabClient,
    files: dict[str, Path],
    service: FakeDatalab,
    caplog: pytest.LogCaptureFixture,
) -> None:
    service.failing = {"scan.png"}
    loader = DatalabOCRLoader(list(files.values()), client=client, errors="collect")

    with caplog.at_level(logging.WARNING):
        loader.load()

    lines = [record.getMessage() for record in caplog.records if "scan.png" in record.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("failed: ")
