"""Question -> retrieved chunks -> the page regions they came from, drawn on the pages.

    python examples/citations.py [FILE ...] [-q "a question" ...] [--out DIR] [--mode page|file]

Every FILE (by default the files in ``examples/data``) is OCRed by ``DatalabOCRLoader``
into page documents; ``DatalabOCRTextSplitter`` cuts them into chunks, each with a
``bboxes`` metadata value (where on which page its lines stand, in page fractions). The
chunks go into LangChain's ``InMemoryVectorStore`` with a hashed bag-of-words embedding
(no model download), saved to disk and read back, as a real vector store would keep them.
For each question the best chunks are printed with their file and page, and their regions
are drawn onto the pages (rendered with pypdfium2; images as they are) in
``DIR/q<N>-<file>-p<page>.png``.

OCR runs on the embedded local server (``local=True``), or on the hosted API when
``DATALAB_API_KEY`` is set.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import re
from collections import defaultdict
from pathlib import Path

import pypdfium2 as pdfium
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore
from PIL import Image, ImageDraw

from datalab_ocr import PageSpan, decode_bboxes
from datalab_ocr.langchain import DatalabOCRLoader, DatalabOCRTextSplitter

DATA = Path(__file__).resolve().parent / "data"
QUESTIONS = [
    "When does the siren sound before high water?",
    "What are the opening hours and the price of entry?",
    "What was the total on the cafe receipt?",
]
COLOURS = [(230, 57, 70), (29, 120, 220), (40, 160, 80)]
RENDER_SCALE = 1.5  # 108 dpi: regions are easy to see, files stay small
# Words that say nothing about a chunk's subject; left out so questions match on content.
STOP_WORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from",
     "has", "have", "how", "in", "is", "it", "its", "of", "on", "or", "the", "this", "to",
     "was", "were", "what", "when", "where", "which", "who", "why", "with")
)  # fmt: skip


class HashingEmbeddings(Embeddings):
    """Words hashed into a fixed-size, L2-normalised count vector: a stand-in for a real
    embedding model that still ranks chunks sharing words with the question first."""

    def __init__(self, size: int = 512) -> None:
        self.size = size

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.size
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            if word in STOP_WORDS:
                continue
            slot = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
            vector[slot % self.size] += 1.0
        norm = math.sqrt(sum(value * value for value in vector)) or 1.0
        return [value / norm for value in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed search documents."""
        return [self._embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        """Embed a query."""
        return self._embed(text)


def load_chunks(files: list[Path], mode: str) -> list[Document]:
    """OCR the files into pages and split the pages into chunks that know their regions."""
    hosted = bool(os.environ.get("DATALAB_API_KEY"))
    print(f"OCR backend: {'hosted Datalab API' if hosted else 'embedded local server'}")
    loader = DatalabOCRLoader(files, local=not hosted, mode="file" if mode == "file" else "page")
    try:
        pages = loader.load()
    finally:
        loader.close()
    splitter = DatalabOCRTextSplitter(chunk_size=300, chunk_overlap=60)
    chunks = splitter.split_documents(pages)
    print(f"{len(pages)} documents, {len(chunks)} chunks\n")
    return chunks


def store_and_reload(chunks: list[Document], folder: Path) -> InMemoryVectorStore:
    """Index the chunks, save the store as JSON and load it back: metadata must survive."""
    embedding = HashingEmbeddings()
    store = InMemoryVectorStore(embedding)
    store.add_documents(chunks)
    path = folder / "vector-store.json"
    store.dump(str(path))
    return InMemoryVectorStore.load(str(path), embedding)


def page_image(source: str, page_index: int) -> Image.Image:
    """The page as displayed: a PDF page rendered by PDFium, or the image file itself."""
    if Path(source).suffix.lower() == ".pdf":
        pdf = pdfium.PdfDocument(source)
        try:
            image = pdf[page_index].render(scale=RENDER_SCALE).to_pil()
            page: Image.Image = image.convert("RGB")
        finally:
            pdf.close()
        return page
    with Image.open(source) as opened:
        opened.seek(page_index)
        frame: Image.Image = opened.convert("RGB")
    return frame


def draw(
    image: Image.Image, regions: list[tuple[int, PageSpan]], colour: tuple[int, int, int]
) -> Image.Image:
    """Outline each region (rank, span) and shade it lightly, with its rank beside it."""
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    pen = ImageDraw.Draw(overlay)
    for rank, span in regions:
        x0, y0, x1, y1 = span.pixels(*image.size)
        pen.rectangle((x0 - 3, y0 - 3, x1 + 3, y1 + 3), fill=(*colour, 40), outline=colour, width=3)
        pen.text((max(0.0, x0 - 18), max(0.0, y0 - 4)), f"#{rank}", fill=(*colour, 255))
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")


def answer(store: InMemoryVectorStore, question: str, number: int, out: Path, k: int) -> None:
    """Print the best chunks for ``question`` with citations and draw their regions."""
    print(f"Q{number}: {question}")
    by_page: dict[tuple[str, int], list[tuple[int, PageSpan]]] = defaultdict(list)
    for rank, hit in enumerate(store.similarity_search(question, k=k), start=1):
        spans = decode_bboxes(hit.metadata["bboxes"]) if "bboxes" in hit.metadata else []
        source = str(hit.metadata["source"])
        pages = ", ".join(str(span.page_index + 1) for span in spans) or "?"
        first = hit.page_content.strip().splitlines()[0][:60]
        print(f"  #{rank} [{Path(source).name}, page {pages}] {first}")
        for span in spans:
            print(
                f"      page {span.page_index + 1}: x {span.x0:.3f}-{span.x1:.3f}, "
                f"y {span.y0:.3f}-{span.y1:.3f} of the page"
            )
            by_page[(source, span.page_index)].append((rank, span))
    colour = COLOURS[(number - 1) % len(COLOURS)]
    for (source, page_index), regions in sorted(by_page.items()):
        path = out / f"q{number}-{Path(source).stem}-p{page_index + 1}.png"
        draw(page_image(source, page_index), regions, colour).save(path)
        print(f"  drawn: {path}")
    print()


def main() -> None:
    """Parse the command line, then OCR, split, store, retrieve and draw."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "files", nargs="*", type=Path, help="PDFs or images (default: examples/data)"
    )
    parser.add_argument("-q", "--question", action="append", help="a question (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("citations-out"), help="where PNGs go")
    parser.add_argument("--mode", choices=["page", "file"], default="page", help="loader mode")
    parser.add_argument("-k", type=int, default=3, help="chunks per question")
    arguments = parser.parse_args()
    files = arguments.files or sorted(p for p in DATA.iterdir() if p.suffix != ".py")
    arguments.out.mkdir(parents=True, exist_ok=True)

    store = store_and_reload(load_chunks(files, arguments.mode), arguments.out)
    for number, question in enumerate(arguments.question or QUESTIONS, start=1):
        answer(store, question, number, arguments.out, arguments.k)


if __name__ == "__main__":
    main()
