"""The LlamaIndex reader against the fake service: documents, settings and framework fit."""

from __future__ import annotations

import pickle
from pathlib import Path

import fsspec  # type: ignore[import-untyped]
import pytest
from llama_index.core import SimpleDirectoryReader
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
from llama_index.core.schema import Document, MetadataMode
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.vector_stores import SimpleVectorStore

from datalab_ocr import (
    AsyncDatalabClient,
    DatalabClient,
    InvalidInputError,
    JobFailedError,
    PollPolicy,
)
from datalab_ocr.llama_index import DatalabOCRReader

from .conftest import API_KEY, FakeDatalab, pdf_bytes, png_bytes


@pytest.fixture
def reader(client: DatalabClient) -> DatalabOCRReader:
    return DatalabOCRReader(client=client)


# One document per page, and what it says.


def test_each_page_becomes_a_document(reader: DatalabOCRReader, files: dict[str, Path]) -> None:
    documents = reader.load_data(files["report.pdf"])

    assert [d.text for d in documents] == [
        "report.pdf page 1\nsecond line",
        "report.pdf page 2\nsecond line",
    ]


def test_documents_name_file_and_page(reader: DatalabOCRReader, files: dict[str, Path]) -> None:
    documents = reader.load_data(str(files["report.pdf"]))

    meta = documents[1].metadata
    assert meta["file_path"] == str(files["report.pdf"])
    assert meta["file_name"] == "report.pdf"
    assert (meta["page_label"], meta["page_index"], meta["total_pages"]) == ("2", 1, 2)
    assert meta["request_id"] == "req-0"
    assert meta["datalab_version_surya"] == "0.17.0"
    assert (meta["page_width"], meta["page_height"]) == (800.0, 1000.0)
    assert meta["mean_confidence"] == pytest.approx(0.55)


def test_bookkeeping_stays_out_of_embeddings_and_prompts(
    files: dict[str, Path], client: DatalabClient
) -> None:
    reader = DatalabOCRReader(client=client, include_geometry=True)
    document = reader.load_data(files["report.pdf"])[0]

    for mode in (MetadataMode.EMBED, MetadataMode.LLM):
        shown = document.get_metadata_str(mode)
        assert "req-0" not in shown
        assert "line_geometry" not in shown
        assert "datalab_version" not in shown
        assert "mean_confidence" not in shown
        assert "page_label: 1" in shown
    assert "line_geometry" in document.metadata


def test_page_range_keeps_original_page_numbers(
    files: dict[str, Path], client: DatalabClient, service: FakeDatalab
) -> None:
    service.pages["report.pdf"] = [["zero"], ["one"], ["two"]]
    reader = DatalabOCRReader(client=client, page_range="1-2")

    documents = reader.load_data(files["report.pdf"])

    assert [(d.text, d.metadata["page_label"]) for d in documents] == [("one", "2"), ("two", "3")]


def test_file_mode_gives_one_document_per_file(
    files: dict[str, Path], client: DatalabClient
) -> None:
    reader = DatalabOCRReader(client=client, mode="file")

    (document,) = reader.load_data(files["report.pdf"])

    assert document.text == "report.pdf page 1\nsecond line\n\freport.pdf page 2\nsecond line"
    assert document.metadata["total_pages"] == 2


def test_extra_info_is_merged_into_every_page(
    reader: DatalabOCRReader, files: dict[str, Path]
) -> None:
    documents = reader.load_data(files["report.pdf"], extra_info={"tenant": "acme"})

    assert [d.metadata["tenant"] for d in documents] == ["acme", "acme"]
    assert documents[0].metadata["page_label"] == "1"


def test_several_files_are_read_in_order(
    reader: DatalabOCRReader, files: dict[str, Path], service: FakeDatalab
) -> None:
    documents = reader.load_data([files["scan.png"], files["report.pdf"]])

    assert [d.metadata["file_name"] for d in documents] == ["scan.png"] * 2 + ["report.pdf"] * 2
    assert sorted(service.submitted_names) == ["report.pdf", "scan.png"]


def test_lazy_load_keeps_input_order_while_files_run_concurrently(
    reader: DatalabOCRReader, files: dict[str, Path]
) -> None:
    order = [files["scan.png"], files["report.pdf"], files["letter.pdf"]]

    documents = list(reader.lazy_load_data(order))

    names = list(dict.fromkeys(d.metadata["file_name"] for d in documents))
    assert names == ["scan.png", "report.pdf", "letter.pdf"]


def test_concurrency_bounds_the_files_in_flight(
    client: DatalabClient, files: dict[str, Path], service: FakeDatalab
) -> None:
    reader = DatalabOCRReader(client=client, concurrency=1)

    reader.load_data(list(files.values()))

    assert service.max_in_flight == 1


# Ids: re-ingesting updates instead of duplicating.


def test_ids_are_stable_across_loads(reader: DatalabOCRReader, files: dict[str, Path]) -> None:
    first = [d.id_ for d in reader.load_data(files["report.pdf"])]
    again = [d.id_ for d in reader.load_data(files["report.pdf"])]

    assert first == again
    assert len(set(first)) == 2


def test_ids_follow_content_not_path(
    reader: DatalabOCRReader, files: dict[str, Path], tmp_path: Path
) -> None:
    copy = tmp_path / "copy.pdf"
    copy.write_bytes(files["report.pdf"].read_bytes())

    original = [d.id_ for d in reader.load_data(files["report.pdf"])]

    assert [d.id_ for d in reader.load_data(copy)] == original
    assert [d.id_ for d in reader.load_data(files["letter.pdf"])] != original


def test_reingesting_into_a_docstore_does_not_duplicate(
    reader: DatalabOCRReader, files: dict[str, Path]
) -> None:
    docstore = SimpleDocumentStore()
    vector_store = SimpleVectorStore()
    pipeline = IngestionPipeline(
        transformations=[MockEmbedding(embed_dim=4)],
        docstore=docstore,
        vector_store=vector_store,
        docstore_strategy=DocstoreStrategy.UPSERTS,
    )

    pipeline.run(documents=reader.load_data(files["report.pdf"]))
    pipeline.run(documents=reader.load_data(files["report.pdf"]))

    assert len(docstore.docs) == 2
    assert len(vector_store.data.embedding_dict) == 2


# Errors propagate, naming the file.


def test_a_failed_job_raises_naming_the_file(
    reader: DatalabOCRReader, files: dict[str, Path], service: FakeDatalab
) -> None:
    service.failing.add("letter.pdf")

    with pytest.raises(JobFailedError) as caught:
        reader.load_data([files["report.pdf"], files["letter.pdf"]])

    assert "letter.pdf" in str(caught.value)


def test_a_missing_file_raises_before_any_upload(
    reader: DatalabOCRReader, tmp_path: Path, service: FakeDatalab
) -> None:
    with pytest.raises(InvalidInputError, match=r"missing\.pdf"):
        reader.load_data(tmp_path / "missing.pdf")

    assert service.requests == []


# Fitting into SimpleDirectoryReader, with local files and with an fsspec filesystem.


def test_simple_directory_reader_uses_it_as_file_extractor(
    reader: DatalabOCRReader, files: dict[str, Path], tmp_path: Path
) -> None:
    loader = SimpleDirectoryReader(
        str(tmp_path), file_extractor={".pdf": reader, ".png": reader}, raise_on_error=True
    )

    documents = loader.load_data()

    pages = sorted((d.metadata["file_name"], d.metadata["page_label"]) for d in documents)
    assert pages == [(name, label) for name in sorted(files) for label in ("1", "2")]
    assert all(d.metadata["file_path"].startswith(str(tmp_path)) for d in documents)
    assert all("last_modified_date" in d.metadata for d in documents)


def test_simple_directory_reader_reads_through_an_fsspec_filesystem(
    reader: DatalabOCRReader, service: FakeDatalab
) -> None:
    memory = fsspec.filesystem("memory")
    memory.pipe("/inbox/invoice.pdf", pdf_bytes("invoice"))
    memory.pipe("/inbox/photo.png", png_bytes("photo"))
    try:
        loader = SimpleDirectoryReader(
            "/inbox",
            fs=memory,
            file_extractor={".pdf": reader, ".png": reader},
            raise_on_error=True,
        )
        documents = loader.load_data()
    finally:
        memory.rm("/inbox", recursive=True)

    assert sorted(service.submitted_names) == ["invoice.pdf", "photo.png"]
    assert {d.metadata["file_name"] for d in documents} == {"invoice.pdf", "photo.png"}
    assert {d.metadata["file_path"] for d in documents} == {
        "/inbox/invoice.pdf",
        "/inbox/photo.png",
    }


# Serialization and settings.


def test_the_key_never_appears_in_serialized_forms() -> None:
    reader = DatalabOCRReader(api_key=API_KEY, polling=PollPolicy(timeout=30))

    for text in (reader.to_json(), str(reader.to_dict()), repr(reader), str(reader)):
        assert API_KEY not in text
    assert "api_key" not in reader.to_dict()


def test_a_round_trip_keeps_settings_and_takes_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = DatalabOCRReader(
        api_key=API_KEY, page_range="0-2", mode="file", polling=PollPolicy(timeout=30)
    )
    monkeypatch.setenv("DATALAB_API_KEY", "from-the-environment")

    restored = DatalabOCRReader.from_json(reader.to_json())

    assert restored.to_dict() == reader.to_dict()
    assert restored.polling == PollPolicy(timeout=30)
    assert restored.api_key is None
    assert repr(restored._sync_client()).endswith("api_key=set)")


def test_a_round_trip_takes_the_key_as_an_argument() -> None:
    reader = DatalabOCRReader(api_key=API_KEY)

    restored = DatalabOCRReader.from_dict(reader.to_dict(), api_key="another-key")

    assert restored.api_key is not None
    assert restored.api_key.get_secret_value() == "another-key"


def test_it_identifies_as_a_remote_reader() -> None:
    reader = DatalabOCRReader()

    assert reader.is_remote is True
    assert DatalabOCRReader.class_name() == "DatalabOCRReader"
    assert reader.to_dict()["class_name"] == "DatalabOCRReader"


def test_the_client_is_built_once_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATALAB_API_KEY", API_KEY)
    reader = DatalabOCRReader()

    assert reader._client is None
    assert reader._sync_client() is reader._sync_client()
    reader.close()


def test_a_pickled_copy_keeps_settings_but_not_the_key_and_builds_its_own_client(
    client: DatalabClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = DatalabOCRReader(client=client, api_key=API_KEY, mode="file")

    pickled = pickle.dumps(reader)
    copy = pickle.loads(pickled)

    assert API_KEY.encode() not in pickled
    assert copy.mode == "file"
    assert copy.api_key is None
    assert copy._client is None
    assert "unpickleable" not in caplog.text
    # A worker process inherits the environment, where the copy finds its key.
    monkeypatch.setenv("DATALAB_API_KEY", "worker-key")
    assert copy._sync_client()._connection.api_key == "worker-key"
    copy.close()


def test_bad_options_fail_at_construction() -> None:
    with pytest.raises(InvalidInputError):
        DatalabOCRReader(page_range="3-1")
    with pytest.raises(ValueError, match="concurrency"):
        DatalabOCRReader(concurrency=0)


def test_progress_bar_does_not_change_the_documents(
    client: DatalabClient, files: dict[str, Path]
) -> None:
    reader = DatalabOCRReader(client=client, show_progress=True)

    assert len(reader.load_data([files["report.pdf"], files["scan.png"]])) == 4


# Async: the async client, up to `concurrency` files at once.


@pytest.mark.anyio
async def test_aload_data_returns_documents_in_input_order(
    async_client: AsyncDatalabClient, files: dict[str, Path]
) -> None:
    reader = DatalabOCRReader(async_client=async_client)

    documents = await reader.aload_data([files["scan.png"], files["report.pdf"]])

    assert [d.metadata["file_name"] for d in documents] == ["scan.png"] * 2 + ["report.pdf"] * 2
    assert [d.metadata["page_label"] for d in documents] == ["1", "2", "1", "2"]


@pytest.mark.anyio
async def test_async_ids_match_sync_ids(
    async_client: AsyncDatalabClient, reader: DatalabOCRReader, files: dict[str, Path]
) -> None:
    async_reader = DatalabOCRReader(async_client=async_client)

    documents = await async_reader.aload_data(files["report.pdf"])

    assert [d.id_ for d in documents] == [d.id_ for d in reader.load_data(files["report.pdf"])]


@pytest.mark.anyio
async def test_alazy_load_data_streams_documents(
    async_client: AsyncDatalabClient, files: dict[str, Path]
) -> None:
    reader = DatalabOCRReader(async_client=async_client)

    streamed: list[Document] = []
    async for document in reader.alazy_load_data(list(files.values())):
        streamed.append(document)

    assert len(streamed) == 6
    by_file: dict[str, list[str]] = {}
    for document in streamed:
        by_file.setdefault(document.metadata["file_name"], []).append(
            document.metadata["page_label"]
        )
    assert by_file == {name: ["1", "2"] for name in files}


@pytest.mark.anyio
async def test_alazy_load_data_can_also_be_awaited(
    async_client: AsyncDatalabClient, files: dict[str, Path]
) -> None:
    reader = DatalabOCRReader(async_client=async_client)

    documents = await reader.alazy_load_data(files["report.pdf"])

    assert len(list(documents)) == 2


@pytest.mark.anyio
async def test_async_runs_at_most_concurrency_files_at_once(
    async_client: AsyncDatalabClient, service: FakeDatalab, tmp_path: Path
) -> None:
    paths = []
    for n in range(6):
        path = tmp_path / f"f{n}.pdf"
        path.write_bytes(pdf_bytes(f"f{n}"))
        paths.append(path)
    reader = DatalabOCRReader(async_client=async_client, concurrency=2)

    documents = await reader.aload_data(paths)

    assert len(documents) == 12
    assert service.max_in_flight == 2


@pytest.mark.anyio
async def test_an_async_failure_raises_naming_the_file(
    async_client: AsyncDatalabClient, service: FakeDatalab, files: dict[str, Path]
) -> None:
    service.failing.add("scan.png")
    reader = DatalabOCRReader(async_client=async_client)

    with pytest.raises(JobFailedError) as caught:
        await reader.aload_data(list(files.values()))

    assert "scan.png" in str(caught.value)
