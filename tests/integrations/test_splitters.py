"""The two splitters in their frameworks: chunks with bboxes that survive a vector store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document as LangChainDocument
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore
from llama_index.core import (
    MockEmbedding,
    StorageContext,
    VectorStoreIndex,
    load_index_from_storage,
)
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.schema import Document as LlamaDocument
from llama_index.core.schema import MetadataMode, TextNode
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from datalab_ocr import OCRResult, decode_bboxes
from datalab_ocr._documents import LoadOptions, SourceFile, build_records
from datalab_ocr._geometry import LINE_MAP_KEY
from datalab_ocr.langchain import DatalabOCRTextSplitter
from datalab_ocr.langchain import _to_document as to_langchain
from datalab_ocr.llama_index import DatalabOCRNodeParser
from datalab_ocr.llama_index import _to_document as to_llama

SHA = "ef" * 32
SOURCE = SourceFile.from_path("/data/marsh-report.pdf")


def survey_result() -> OCRResult:
    """Two pages of a one-column survey report, every line boxed."""
    pages = []
    for index in range(2):
        lines = []
        for number in range(25):
            text = f"Station {index}.{number}: heron count {number * 3}, reed height {number} cm"
            top = 40 + 30 * number
            lines.append({"text": text, "confidence": 0.95, "bbox": [60, top, 560, top + 20]})
        pages.append(
            {"page": index + 1, "page_index": index, "image_bbox": [0, 0, 850, 1100],
             "text_lines": lines}
        )  # fmt: skip
    return OCRResult.model_validate(
        {"status": "complete", "success": True, "request_id": "req-7", "pages": pages}
    )


def llama_documents(mode: str = "page") -> list[LlamaDocument]:
    options = LoadOptions(mode=mode)  # type: ignore[arg-type]
    return [
        to_llama(record, SOURCE, None)
        for record in build_records(survey_result(), SOURCE, SHA, options)
    ]


def langchain_documents(mode: str = "page") -> list[LangChainDocument]:
    options = LoadOptions(mode=mode)  # type: ignore[arg-type]
    return [
        to_langchain(record, SOURCE, {})
        for record in build_records(survey_result(), SOURCE, SHA, options)
    ]


def flat(metadata: dict[str, Any]) -> bool:
    return all(isinstance(value, (str, int, float, bool)) for value in metadata.values())


# LlamaIndex.


def test_node_parser_gives_every_node_its_page_region() -> None:
    nodes = DatalabOCRNodeParser(chunk_size=400, chunk_overlap=80)(llama_documents())

    assert len(nodes) > 4
    for node in nodes:
        (span,) = decode_bboxes(node.metadata["bboxes"])
        assert span.page_index == node.metadata["page_index"]
        assert node.metadata["bboxes_complete"] is True
        assert LINE_MAP_KEY not in node.metadata
        assert flat(node.metadata)


def test_node_geometry_stays_out_of_embeddings_and_prompts() -> None:
    parser = DatalabOCRNodeParser(chunk_size=400, chunk_overlap=0, include_line_boxes=True)
    node = parser(llama_documents())[0]

    for mode in (MetadataMode.EMBED, MetadataMode.LLM):
        content = node.get_content(metadata_mode=mode)
        assert "x0" not in content and "bboxes" not in content
        assert "marsh-report.pdf" in content  # the citation stays visible


def test_node_offsets_point_into_the_page_text() -> None:
    documents = llama_documents()
    nodes = DatalabOCRNodeParser(chunk_size=300, chunk_overlap=100)(documents)

    texts = {document.id_: document.text for document in documents}
    for node in nodes:
        assert isinstance(node, TextNode)
        start, end = node.start_char_idx, node.end_char_idx
        assert start is not None and end is not None
        assert texts[node.ref_doc_id or ""][start:end] == node.text


def test_node_parser_runs_in_an_ingestion_pipeline_in_file_mode() -> None:
    pipeline = IngestionPipeline(transformations=[DatalabOCRNodeParser(chunk_size=500)])

    nodes = pipeline.run(documents=llama_documents(mode="file"))

    pages = [[span.page_index for span in decode_bboxes(n.metadata["bboxes"])] for n in nodes]
    assert [0, 1] in pages
    assert all(len(node.get_content()) <= 500 for node in nodes)


def test_node_metadata_survives_a_simple_vector_store_and_its_persistence(tmp_path: Path) -> None:
    embed = MockEmbedding(embed_dim=8)
    storage = StorageContext.from_defaults(vector_store=SimpleVectorStore())
    index = VectorStoreIndex.from_documents(
        llama_documents(),
        storage_context=storage,
        embed_model=embed,
        transformations=[DatalabOCRNodeParser(chunk_size=400, chunk_overlap=0)],
    )
    stored = {node.node_id: node.metadata["bboxes"] for node in index.docstore.docs.values()}
    index.storage_context.persist(persist_dir=str(tmp_path))

    loaded = load_index_from_storage(
        StorageContext.from_defaults(persist_dir=str(tmp_path)), embed_model=embed
    )
    hits = loaded.as_retriever(similarity_top_k=3).retrieve("heron count")

    assert len(hits) == 3
    for hit in hits:
        assert hit.node.metadata["bboxes"] == stored[hit.node.node_id]
        assert decode_bboxes(hit.node.metadata["bboxes"])


def test_node_metadata_passes_the_flat_check_of_text_storing_vector_stores() -> None:
    # Chroma, Qdrant, pgvector and others store nodes through these two functions.
    node = DatalabOCRNodeParser(chunk_size=400, include_line_boxes=True)(llama_documents())[0]

    stored = node_to_metadata_dict(node, remove_text=False, flat_metadata=True)
    restored = metadata_dict_to_node(stored)

    assert restored.metadata == node.metadata


def test_other_documents_are_split_without_bboxes_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    documents = [
        LlamaDocument(text="\n".join(f"row {n} of a plain text file" for n in range(50)))
        for _ in range(3)
    ]

    with caplog.at_level(logging.WARNING, logger="datalab_ocr"):
        nodes = DatalabOCRNodeParser(chunk_size=200, chunk_overlap=0)(documents)

    assert len(nodes) > 6
    assert all("bboxes" not in node.metadata for node in nodes)
    assert len(caplog.records) == 1


def test_node_parser_counts_tokens_with_a_tokenizer() -> None:
    parser = DatalabOCRNodeParser(chunk_size=60, chunk_overlap=10, tokenizer=str.split)

    nodes = parser(llama_documents())

    assert all(len(node.get_content().split()) <= 60 for node in nodes)
    assert max(len(node.get_content()) for node in nodes) > 200


def test_node_parser_refuses_an_overlap_as_big_as_the_chunk() -> None:
    with pytest.raises(ValueError, match="chunk_overlap"):
        DatalabOCRNodeParser(chunk_size=100, chunk_overlap=100)


# LangChain.


def test_text_splitter_gives_every_chunk_its_page_region() -> None:
    splitter = DatalabOCRTextSplitter(chunk_size=400, chunk_overlap=80, add_start_index=True)
    pages = langchain_documents()

    chunks = splitter.split_documents(pages)

    assert len(chunks) > 4
    for chunk in chunks:
        (span,) = decode_bboxes(chunk.metadata["bboxes"])
        assert span.page_index == chunk.metadata["page"]
        page_text = pages[span.page_index].page_content
        start = chunk.metadata["start_index"]
        assert page_text[start : start + len(chunk.page_content)] == chunk.page_content
        assert LINE_MAP_KEY not in chunk.metadata
        assert flat(chunk.metadata)


def test_text_splitter_metadata_survives_an_in_memory_vector_store_dump(tmp_path: Path) -> None:
    embedding = DeterministicFakeEmbedding(size=16)
    chunks = DatalabOCRTextSplitter(chunk_size=400, chunk_overlap=0).split_documents(
        langchain_documents(mode="file")
    )
    assert all(flat(chunk.metadata) for chunk in chunks)
    store = InMemoryVectorStore(embedding)
    store.add_documents(chunks)
    store.dump(str(tmp_path / "store.json"))

    loaded = InMemoryVectorStore.load(str(tmp_path / "store.json"), embedding)
    hits = loaded.similarity_search(chunks[3].page_content, k=2)

    assert hits[0].page_content == chunks[3].page_content
    assert hits[0].metadata["bboxes"] == chunks[3].metadata["bboxes"]
    assert decode_bboxes(hits[0].metadata["bboxes"])


def test_text_splitter_counts_tokens_with_a_length_function() -> None:
    def words(text: str) -> int:
        return len(text.split())

    splitter = DatalabOCRTextSplitter(chunk_size=60, chunk_overlap=10, length_function=words)

    chunks = splitter.split_documents(langchain_documents())

    assert all(words(chunk.page_content) <= 60 for chunk in chunks)
    assert max(len(chunk.page_content) for chunk in chunks) > 200


def test_both_splitters_cut_the_same_chunks_in_the_same_places() -> None:
    nodes = DatalabOCRNodeParser(chunk_size=350, chunk_overlap=70)(llama_documents("file"))
    chunks = DatalabOCRTextSplitter(chunk_size=350, chunk_overlap=70).split_documents(
        langchain_documents("file")
    )

    assert [(n.get_content(), n.metadata["bboxes"]) for n in nodes] == [
        (c.page_content, c.metadata["bboxes"]) for c in chunks
    ]
