"""The LangChain loader and blob parser against the fake service."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from langchain_core.documents.base import Blob

from datalab_ocr import (
    AsyncDatalabClient,
    DatalabClient,
    InvalidInputError,
    JobFailedError,
)
from datalab_ocr.langchain import DatalabOCRLoader, DatalabOCRParser

from .conftest import API_KEY, FakeDatalab, pdf_bytes

with warnings.catch_warnings():
    # langchain-community announces its sunset on import; the test needs GenericLoader only.
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.document_loaders.blob_loaders import FileSystemBlobLoader
    from langchain_community.document_loaders.generic import GenericLoader


@pytest.fixture
def parser(client: DatalabClient) -> DatalabOCRParser:
    return DatalabOCRParser(client=client)


# The loader: one document per page, named like LangChain's PDF loaders name them.


def test_each_page_becomes_a_document(client: DatalabClient, files: dict[str, Path]) -> None:
    documents = DatalabOCRLoader(files["report.pdf"], client=client).load()

    assert [d.page_content for d in documents] == [
        "report.pdf page 1\nsecond line",
        "report.pdf page 2\nsecond line",
    ]


def test_metadata_follows_the_pdf_loader_convention(
    client: DatalabClient, files: dict[str, Path]
) -> None:
    documents = DatalabOCRLoader(str(files["report.pdf"]), client=client).load()

    meta = documents[1].metadata
    assert meta["source"] == str(files["report.pdf"])
    assert (meta["page"], meta["page_label"], meta["total_pages"]) == (1, "2", 2)
    assert meta["page_index"] == 1
    assert meta["request_id"] == "req-0"
    assert meta["datalab_version_models_detector"] == "2025-01"
    assert all(isinstance(v, (str, int, float, bool)) for v in meta.values())


def test_documents_carry_stable_ids(client: DatalabClient, files: dict[str, Path]) -> None:
    loader = DatalabOCRLoader(files["report.pdf"], client=client)

    first = [d.id for d in loader.load()]

    assert first == [d.id for d in loader.load()]
    assert None not in first
    assert len(set(first)) == 2


def test_file_mode_gives_one_document_per_file(
    client: DatalabClient, files: dict[str, Path]
) -> None:
    (document,) = DatalabOCRLoader(files["report.pdf"], client=client, mode="file").load()

    assert "page" not in document.metadata
    assert document.metadata["source"] == str(files["report.pdf"])
    assert document.page_content.count("\f") == 1


def test_a_list_of_files_is_loaded_in_order(
    client: DatalabClient, files: dict[str, Path], service: FakeDatalab
) -> None:
    loader = DatalabOCRLoader([files["scan.png"], files["letter.pdf"]], client=client)

    sources = [Path(d.metadata["source"]).name for d in loader.lazy_load()]

    assert sources == ["scan.png", "scan.png", "letter.pdf", "letter.pdf"]


def test_a_directory_loads_every_supported_file_by_default(
    client: DatalabClient, files: dict[str, Path], tmp_path: Path, service: FakeDatalab
) -> None:
    (tmp_path / "notes.txt").write_text("not for OCR")

    documents = DatalabOCRLoader(tmp_path, client=client).load()

    # Files run concurrently, so submits come in any order; documents keep the sorted order.
    assert sorted(service.submitted_names) == sorted(files)
    assert list(dict.fromkeys(Path(d.metadata["source"]).name for d in documents)) == sorted(files)


def test_a_directory_glob_picks_the_files(
    client: DatalabClient, files: dict[str, Path], tmp_path: Path, service: FakeDatalab
) -> None:
    nested = tmp_path / "deeper"
    nested.mkdir()
    (nested / "annex.pdf").write_bytes(pdf_bytes("annex"))

    DatalabOCRLoader(tmp_path, glob="**/*.pdf", client=client).load()

    assert sorted(service.submitted_names) == ["annex.pdf", "letter.pdf", "report.pdf"]


def test_an_empty_directory_is_an_error_not_an_empty_list(
    client: DatalabClient, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match="no files to OCR"):
        DatalabOCRLoader(tmp_path, client=client).load()


def test_a_failed_job_raises_naming_the_file(
    client: DatalabClient, files: dict[str, Path], service: FakeDatalab
) -> None:
    service.failing.add("report.pdf")

    with pytest.raises(JobFailedError) as caught:
        DatalabOCRLoader(files["report.pdf"], client=client).load()

    assert "report.pdf" in str(caught.value)


def test_the_loader_implements_lazy_load_and_keeps_the_base_load() -> None:
    assert DatalabOCRLoader.load is BaseLoader.load
    assert DatalabOCRLoader.aload is BaseLoader.aload


def test_the_key_never_appears_in_repr() -> None:
    loader = DatalabOCRLoader("x.pdf", api_key=API_KEY)

    assert API_KEY not in repr(loader)
    assert "api_key=set" in repr(loader)
    assert API_KEY not in repr(DatalabOCRParser(api_key=API_KEY))


def test_bad_options_fail_at_construction() -> None:
    with pytest.raises(InvalidInputError):
        DatalabOCRLoader("x.pdf", max_pages=0)


# The parser: any blob source feeds it.


def test_the_parser_reads_blobs_built_in_memory(
    parser: DatalabOCRParser, service: FakeDatalab
) -> None:
    blob = Blob.from_data(pdf_bytes("memo"), path="s3://bucket/memo.pdf")

    documents = list(parser.lazy_parse(blob))

    assert service.submitted_names == ["memo.pdf"]
    assert [d.metadata["source"] for d in documents] == ["s3://bucket/memo.pdf"] * 2
    assert [d.metadata["page"] for d in documents] == [0, 1]


def test_the_parser_keeps_the_blob_metadata(parser: DatalabOCRParser) -> None:
    blob = Blob.from_data(
        pdf_bytes("memo"), path="memo.pdf", metadata={"source": "crm://42", "owner": "ops"}
    )

    documents = parser.parse(blob)

    assert {(d.metadata["source"], d.metadata["owner"]) for d in documents} == {("crm://42", "ops")}


def test_a_blob_without_a_name_is_refused(parser: DatalabOCRParser) -> None:
    with pytest.raises(InvalidInputError, match="path"):
        parser.parse(Blob.from_data(pdf_bytes("anonymous")))


def test_generic_loader_feeds_the_parser(
    parser: DatalabOCRParser, files: dict[str, Path], tmp_path: Path
) -> None:
    loader = GenericLoader(FileSystemBlobLoader(tmp_path, glob="*.pdf"), parser)

    documents = loader.load()

    assert sorted({Path(d.metadata["source"]).name for d in documents}) == [
        "letter.pdf",
        "report.pdf",
    ]
    assert len(documents) == 4


def test_parser_and_loader_give_the_same_ids(
    client: DatalabClient, parser: DatalabOCRParser, files: dict[str, Path]
) -> None:
    from_loader = DatalabOCRLoader(files["report.pdf"], client=client).load()
    from_blob = parser.parse(Blob.from_data(files["report.pdf"].read_bytes(), path="other.pdf"))

    assert [d.id for d in from_loader] == [d.id for d in from_blob]


# Async: the async client, several files at once, documents streamed.


@pytest.mark.anyio
async def test_alazy_load_streams_every_page(
    async_client: AsyncDatalabClient, files: dict[str, Path]
) -> None:
    loader = DatalabOCRLoader(list(files.values()), async_client=async_client)

    streamed: list[Document] = [document async for document in loader.alazy_load()]

    pages = sorted((Path(d.metadata["source"]).name, d.metadata["page"]) for d in streamed)
    assert pages == [(name, page) for name in sorted(files) for page in (0, 1)]


@pytest.mark.anyio
async def test_aload_runs_files_concurrently_within_the_limit(
    async_client: AsyncDatalabClient, files: dict[str, Path], service: FakeDatalab
) -> None:
    loader = DatalabOCRLoader(list(files.values()), async_client=async_client, concurrency=2)

    documents = await loader.aload()

    assert len(documents) == 6
    assert service.max_in_flight == 2


@pytest.mark.anyio
async def test_an_async_failure_raises_naming_the_file(
    async_client: AsyncDatalabClient, files: dict[str, Path], service: FakeDatalab
) -> None:
    service.failing.add("letter.pdf")
    loader = DatalabOCRLoader(list(files.values()), async_client=async_client)

    with pytest.raises(JobFailedError, match=r"letter\.pdf"):
        await loader.aload()


@pytest.mark.anyio
async def test_the_parser_parses_a_blob_asynchronously(
    async_client: AsyncDatalabClient,
) -> None:
    parser = DatalabOCRParser(async_client=async_client)
    blob = Blob.from_data(pdf_bytes("memo"), path="memo.pdf")

    documents = [document async for document in parser.alazy_parse(blob)]

    assert [d.metadata["page_label"] for d in documents] == ["1", "2"]
