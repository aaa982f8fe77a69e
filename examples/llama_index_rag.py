"""Index OCRed pages with LlamaIndex and retrieve them with page citations, fully offline.

    python examples/llama_index_rag.py ["your question" ...]

The files in ``examples/data`` are read through ``SimpleDirectoryReader`` with the Datalab
reader as file extractor: one ``Document`` per page. A small BM25 retriever (``rank_bm25``,
no model downloads, no LLM) ranks the pages; each hit is printed with its file name and
page label, which is what an answer would cite.

OCR runs on the embedded local server (``local=True``), or on the hosted API when
``DATALAB_API_KEY`` is set.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from llama_index.core import SimpleDirectoryReader
from llama_index.core.readers.base import BaseReader
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import BaseNode, Document, NodeWithScore, QueryBundle
from rank_bm25 import BM25Okapi

from datalab_ocr.llama_index import DatalabOCRReader

DATA = Path(__file__).resolve().parent / "data"
QUESTIONS = [
    "What are the opening hours and the price of entry?",
    "How much did the crab sandwich cost?",
    "Which tide rolls does the museum want to borrow?",
]


def tokenize(text: str) -> list[str]:
    """Lower-cased words and numbers: enough for keyword retrieval over OCR text."""
    return re.findall(r"[a-z0-9]+", text.lower())


class BM25PageRetriever(BaseRetriever):
    """Ranks nodes by BM25 over their text; a drop-in retriever for query engines."""

    def __init__(self, nodes: list[BaseNode], top_k: int = 2) -> None:
        super().__init__()
        self._nodes = nodes
        self._top_k = top_k
        self._bm25 = BM25Okapi([tokenize(node.get_content()) for node in nodes])

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        scores = self._bm25.get_scores(tokenize(query_bundle.query_str))
        ranked = sorted(
            zip(self._nodes, scores, strict=True), key=lambda pair: pair[1], reverse=True
        )
        return [
            NodeWithScore(node=node, score=float(score))
            for node, score in ranked[: self._top_k]
            if score > 0
        ]


def load_pages() -> list[Document]:
    """OCR every example file into page documents."""
    hosted = bool(os.environ.get("DATALAB_API_KEY"))
    print(f"OCR backend: {'hosted Datalab API' if hosted else 'embedded local server'}")
    reader = DatalabOCRReader(local=not hosted)
    try:
        extractor: dict[str, BaseReader] = {suffix: reader for suffix in (".pdf", ".jpg", ".png")}
        loader = SimpleDirectoryReader(
            str(DATA),
            required_exts=list(extractor),
            file_extractor=extractor,
            raise_on_error=True,
        )
        return loader.load_data()
    finally:
        reader.close()


def main(questions: list[str]) -> None:
    """Index the pages and print the best pages for each question, with citations."""
    pages = load_pages()
    print(f"indexed {len(pages)} pages\n")
    retriever = BM25PageRetriever(list(pages))
    for question in questions:
        print(f"Q: {question}")
        for hit in retriever.retrieve(question):
            meta = hit.node.metadata
            first = hit.node.get_content().strip().splitlines()[0] if hit.node.get_content() else ""
            print(
                f"  [{meta['file_name']}, page {meta['page_label']}] "
                f"score {hit.score:.2f}: {first[:70]}"
            )
        print()


if __name__ == "__main__":
    main(sys.argv[1:] or QUESTIONS)
