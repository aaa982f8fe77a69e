"""OCR pages with LangChain, split them, and retrieve chunks with page citations, offline.

    python examples/langchain_chain.py ["your question" ...]

``DatalabOCRLoader`` turns every file in ``examples/data`` into page documents; a
``RecursiveCharacterTextSplitter`` cuts them into chunks that keep the page metadata; a
``BM25Retriever`` (keyword ranking, no model download, no LLM) finds the chunks for each
question. Each hit is printed with its file and page, as an answer would cite it.

OCR runs on the embedded local server (``local=True``), or on the hosted API when
``DATALAB_API_KEY`` is set.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from datalab_ocr.langchain import DatalabOCRLoader

with warnings.catch_warnings():
    # langchain-community announces its sunset on import; its BM25Retriever still works.
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.retrievers import BM25Retriever

DATA = Path(__file__).resolve().parent / "data"
QUESTIONS = [
    "When does the siren sound before high water?",
    "What was the total on the cafe receipt?",
    "Who wrote to Ms Keswick about the storm of 14 January?",
]


def load_chunks() -> list[Document]:
    """OCR the example files into pages, then split the pages into chunks."""
    hosted = bool(os.environ.get("DATALAB_API_KEY"))
    print(f"OCR backend: {'hosted Datalab API' if hosted else 'embedded local server'}")
    pages = DatalabOCRLoader(DATA, local=not hosted).load()
    splitter = RecursiveCharacterTextSplitter(chunk_size=400, chunk_overlap=40)
    chunks = splitter.split_documents(pages)
    print(f"{len(pages)} pages, {len(chunks)} chunks\n")
    return chunks


def tokenize(text: str) -> list[str]:
    """Lower-cased words and numbers, so "CAFE" on a receipt matches "cafe" in a question."""
    return re.findall(r"[a-z0-9]+", text.lower())


def cite(document: Document) -> str:
    """``[file, page N]`` from the page metadata the loader set."""
    meta = document.metadata
    return f"[{Path(meta['source']).name}, page {meta['page_label']}]"


def main(questions: list[str]) -> None:
    """Retrieve the best chunks for each question and print them with their citation."""
    retriever = BM25Retriever.from_documents(load_chunks(), k=2, preprocess_func=tokenize)
    for question in questions:
        print(f"Q: {question}")
        for hit in retriever.invoke(question):
            snippet = " ".join(hit.page_content.split())[:90]
            print(f"  {cite(hit)} {snippet}")
        print()


if __name__ == "__main__":
    main(sys.argv[1:] or QUESTIONS)
