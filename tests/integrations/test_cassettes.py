"""Both integrations on recorded exchanges with a real server (see ``recording.py``).

The assertions hold for the local server and the hosted API alike: page structure, naming
and a few words each example file certainly contains, not the exact OCR text.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents.base import Blob
from llama_index.core import SimpleDirectoryReader

from datalab_ocr.langchain import DatalabOCRLoader, DatalabOCRParser
from datalab_ocr.llama_index import DatalabOCRReader

from .recording import Backend

pytestmark = pytest.mark.cassette

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"
PAGES = {"saltmarsh-observatory.pdf": 3, "scanned-letter.jpg": 1, "receipt.png": 1}
WORDS = {
    "saltmarsh-observatory.pdf": "Saltmarsh",
    "scanned-letter.jpg": "Dear",
    "receipt.png": "CAFE",
}

Tape = Callable[[str], AbstractContextManager[Backend]]


def pages_by_file(documents: list[Any], name_of: Callable[[Any], str]) -> dict[str, list[str]]:
    """File name -> page labels, in the order the documents came."""
    found: dict[str, list[str]] = {}
    for document in documents:
        found.setdefault(name_of(document), []).append(document.metadata["page_label"])
    return found


def expected_pages() -> dict[str, list[str]]:
    return {name: [str(n) for n in range(1, count + 1)] for name, count in PAGES.items()}


def text_by_file(
    documents: list[Any], name_of: Callable[[Any], str], text_of: Any
) -> dict[str, str]:
    found: dict[str, str] = {}
    for document in documents:
        found[name_of(document)] = found.get(name_of(document), "") + text_of(document)
    return found


def test_reader_in_simple_directory_reader_replays(tape: Tape) -> None:
    with tape("llama_index_directory") as backend:
        reader = DatalabOCRReader(client=backend.sync_client())
        documents = SimpleDirectoryReader(
            str(DATA),
            required_exts=list({Path(name).suffix for name in PAGES}),
            file_extractor={".pdf": reader, ".jpg": reader, ".png": reader},
            raise_on_error=True,
        ).load_data()

    def name_of(d: Any) -> str:
        return str(d.metadata["file_name"])

    assert pages_by_file(documents, name_of) == expected_pages()
    texts = text_by_file(documents, name_of, lambda d: d.text)
    assert all(WORDS[name].lower() in text.lower() for name, text in texts.items())
    assert all(d.metadata["request_id"] and d.metadata["total_pages"] for d in documents)


@pytest.mark.anyio
async def test_reader_async_replays(tape: Tape) -> None:
    with tape("llama_index_async") as backend:
        reader = DatalabOCRReader(async_client=backend.async_client(), concurrency=2)
        documents = await reader.aload_data(sorted(DATA / name for name in PAGES))

    assert pages_by_file(documents, lambda d: d.metadata["file_name"]) == expected_pages()
    assert documents[0].metadata["file_name"] == "receipt.png"


def test_loader_on_a_directory_replays(tape: Tape) -> None:
    with tape("langchain_directory") as backend:
        documents = DatalabOCRLoader(DATA, client=backend.sync_client()).load()

    def name_of(d: Any) -> str:
        return Path(d.metadata["source"]).name

    assert pages_by_file(documents, name_of) == expected_pages()
    assert [d.metadata["page"] for d in documents if name_of(d).endswith(".pdf")] == [0, 1, 2]
    texts = text_by_file(documents, name_of, lambda d: d.page_content)
    assert all(WORDS[name].lower() in text.lower() for name, text in texts.items())


@pytest.mark.anyio
async def test_loader_async_replays(tape: Tape) -> None:
    with tape("langchain_async") as backend:
        loader = DatalabOCRLoader(
            [DATA / name for name in PAGES], async_client=backend.async_client(), concurrency=3
        )
        documents = [document async for document in loader.alazy_load()]

    by_file = pages_by_file(documents, lambda d: Path(d.metadata["source"]).name)
    assert by_file == expected_pages()


def test_parser_on_an_in_memory_blob_replays(tape: Tape) -> None:
    blob = Blob.from_data((DATA / "receipt.png").read_bytes(), path="inbox/receipt.png")

    with tape("langchain_blob") as backend:
        documents = DatalabOCRParser(client=backend.sync_client(), mode="file").parse(blob)

    (document,) = documents
    assert document.metadata["source"] == "inbox/receipt.png"
    assert "cafe" in document.page_content.lower()
