"""A LangChain document loader and blob parser for the Datalab OCR API.

Needs the ``langchain`` extra (``pip install 'datalab-ocr[langchain]'``)::

    from datalab_ocr.langchain import DatalabOCRLoader

    loader = DatalabOCRLoader("scans/", glob="**/*.pdf")   # DATALAB_API_KEY from the env
    for document in loader.lazy_load():
        print(document.metadata["source"], document.metadata["page"])

:class:`DatalabOCRParser` does the same for any blob source, so ``GenericLoader`` (or blobs
built in memory with ``Blob.from_data``) can feed it. Metadata follows LangChain's PDF
loaders: ``source``, ``page`` (0-based), ``page_label`` (1-based string), ``total_pages``.

:class:`DatalabOCRTextSplitter` splits its documents into chunks that carry the page
regions their text came from (``bboxes``), for citations.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ._extras import require_extra

with require_extra(__name__, "langchain", "langchain_core", "LangChain (langchain-core)"):
    from langchain_core.document_loaders import BaseBlobParser, BaseLoader
    from langchain_core.documents import Document
    from langchain_core.documents.base import Blob

with require_extra(
    __name__, "langchain", "langchain_text_splitters", "LangChain (langchain-text-splitters)"
):
    from langchain_text_splitters import TextSplitter

from ._async_client import AsyncDatalabClient
from ._batch import DEFAULT_CONCURRENCY, BatchItem, ErrorPolicy
from ._chunks import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE, ChunkSettings, line_map_of, split
from ._client import DatalabClient
from ._documents import (
    ClientSettings,
    DocumentStream,
    FileRecords,
    LoadOptions,
    Mode,
    PageRecord,
    SourceFile,
    aiter_records,
    iter_records,
)
from ._exceptions import InvalidInputError
from ._geometry import LINE_MAP_KEY
from ._inputs import SUPPORTED_KINDS
from ._page_range import PageRange
from ._policies import PollPolicy, RetryPolicy

__all__ = ["DatalabOCRLoader", "DatalabOCRParser", "DatalabOCRTextSplitter"]

PathLike = str | os.PathLike[str]

_SUPPORTED_SUFFIXES = frozenset(suffix for kind in SUPPORTED_KINDS for suffix in kind.extensions)


class DatalabOCRParser(BaseBlobParser):
    """Parses blobs (PDFs, images, Office files) into one ``Document`` per page by OCR.

    A blob read from disk is streamed from its path; a blob held in memory needs a ``path``
    (or a ``source`` in its metadata) to name it. The blob's own metadata is kept, and the
    OCR metadata is added: ``source``, ``page``, ``page_label``, ``page_index``,
    ``total_pages``, ``request_id``, ``mean_confidence``, ``page_width``, ``page_height``,
    the engine versions (``datalab_version_*``) and the line map that
    :class:`DatalabOCRTextSplitter` places chunks with (``datalab_line_map``; leave it out
    with ``include_line_map=False``). Each document's ``id`` is derived from
    the content, so re-ingesting a file updates instead of duplicating.

    ``client`` and ``async_client`` take clients you built yourself (proxies, tests); the
    connection settings are then ignored and the parser does not close them.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        local: bool = False,
        max_pages: int | None = None,
        page_range: PageRange | None = None,
        skip_cache: bool = False,
        timeout: float | None = None,
        polling: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        errors: ErrorPolicy = "raise",
        show_progress: bool = False,
        mode: Mode = "page",
        include_geometry: bool = False,
        include_line_map: bool = True,
        client: DatalabClient | None = None,
        async_client: AsyncDatalabClient | None = None,
    ) -> None:
        if errors not in ("raise", "skip", "collect"):
            raise ValueError(f"errors must be 'raise', 'skip' or 'collect', not {errors!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self._settings = ClientSettings(
            api_key=api_key,
            base_url=base_url,
            local=local,
            timeout=timeout,
            polling=polling,
            retry=retry,
        )
        self._options = LoadOptions(
            max_pages=max_pages,
            page_range=page_range,
            skip_cache=skip_cache,
            mode=mode,
            include_geometry=include_geometry,
            include_line_map=include_line_map,
        )
        self._concurrency = concurrency
        self._errors: ErrorPolicy = errors
        self._show_progress = show_progress
        self._client = client
        self._owns_client = client is None
        self._async_client = async_client
        self._owns_async_client = async_client is None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self.failures: list[BatchItem] = []
        """Files that failed in the last parse, with ``errors="collect"``."""

    def __getstate__(self) -> dict[str, Any]:
        # A pickled parser (for a process pool) carries neither its clients, which cannot be
        # pickled, nor the API key: the copy takes the key from DATALAB_API_KEY, which worker
        # processes inherit, and builds its own clients.
        state = self.__dict__.copy()
        state["_settings"] = replace(self._settings, api_key=None)
        state["_client"] = state["_async_client"] = state["_async_loop"] = None
        state["_owns_client"] = state["_owns_async_client"] = True
        return state

    def __repr__(self) -> str:
        # The settings' repr leaves the key out; say only whether one was given.
        key = "set" if self._settings.api_key else "none"
        return f"{type(self).__name__}({self._settings!r}, {self._options!r}, api_key={key})"

    def lazy_parse(self, blob: Blob) -> Iterator[Document]:
        """OCR the blob on the sync client and yield its documents, page by page."""
        return self.lazy_parse_many([blob])

    def lazy_parse_many(self, blobs: Sequence[Blob]) -> Iterator[Document]:
        """OCR blobs with up to ``concurrency`` jobs at once (threads on the sync client).

        Documents come in input order: each file's as soon as it and every file before it
        are done. Pages of one file keep their order."""
        sources = [_source_file(blob) for blob in blobs]
        records = iter_records(self._sync_client(), sources, **self._load_arguments())
        for position, file_records in records:
            for record in file_records:
                yield _to_document(record, sources[position], blobs[position].metadata)

    def alazy_parse(self, blob: Blob) -> DocumentStream[Document]:
        """OCR the blob on the async client and stream its documents."""
        return self.alazy_parse_many([blob])

    def alazy_parse_many(self, blobs: Sequence[Blob]) -> DocumentStream[Document]:
        """OCR blobs with up to ``concurrency`` jobs at once; each file's documents as it ends.

        Files may complete out of order; pages of one file keep their order. To stop early,
        close the stream (``contextlib.aclosing``): files not yet started are never sent,
        and jobs already submitted are resumed by the next load.
        """
        return DocumentStream(lambda: self._open_stream(blobs))

    def _open_stream(
        self, blobs: Sequence[Blob]
    ) -> tuple[FileRecords, Callable[[tuple[int, list[PageRecord]]], list[Document]]]:
        sources = [_source_file(blob) for blob in blobs]
        records = aiter_records(self._async(), sources, **self._load_arguments())

        def convert(file: tuple[int, list[PageRecord]]) -> list[Document]:
            position, file_records = file
            metadata = blobs[position].metadata
            return [_to_document(record, sources[position], metadata) for record in file_records]

        return records, convert

    def _load_arguments(self) -> dict[str, Any]:
        """The settings of one parse; starts a fresh list of its failures."""
        self.failures = []
        return {
            "options": self._options,
            "concurrency": self._concurrency,
            "errors": self._errors,
            "show_progress": self._show_progress,
            "failures": self.failures,
        }

    def _sync_client(self) -> DatalabClient:
        if self._client is None:
            self._client = self._settings.sync_client()
        return self._client

    def _async(self) -> AsyncDatalabClient:
        if not self._owns_async_client:
            assert self._async_client is not None
            return self._async_client
        # An httpx.AsyncClient belongs to the event loop it first ran on; a notebook or a
        # test suite may call us from a new loop each time, so build one client per loop.
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_loop is not loop:
            self._async_client = self._settings.async_client()
            self._async_loop = loop
        return self._async_client

    def close(self) -> None:
        """Close the sync client the parser built (a client passed in is left open)."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the clients the parser built (clients passed in are left open)."""
        self.close()
        if self._owns_async_client and self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None


class DatalabOCRLoader(BaseLoader):
    """Loads files by OCR: one ``Document`` per page (or per file with ``mode="file"``).

    ``file_path`` is a file, a list of files, or a directory. In a directory, ``glob``
    picks the files (searched recursively with ``"**/..."``); without it, every file the
    service accepts (PDF, images, Word, PowerPoint) is loaded, in sorted order.

    ``lazy_load`` (threads on the sync client) and ``alazy_load`` (tasks on the async client)
    run up to ``concurrency`` files at once and hand over each file's documents as it
    completes. ``errors`` decides what a failed file does: ``"raise"`` (the default) raises
    its error, naming the file; ``"skip"`` logs it; ``"collect"`` logs it and keeps it in
    :attr:`failures`.
    The other arguments are those of :class:`DatalabOCRParser`.
    """

    def __init__(
        self,
        file_path: PathLike | Sequence[PathLike],
        *,
        glob: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        local: bool = False,
        max_pages: int | None = None,
        page_range: PageRange | None = None,
        skip_cache: bool = False,
        timeout: float | None = None,
        polling: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        errors: ErrorPolicy = "raise",
        show_progress: bool = False,
        mode: Mode = "page",
        include_geometry: bool = False,
        include_line_map: bool = True,
        client: DatalabClient | None = None,
        async_client: AsyncDatalabClient | None = None,
    ) -> None:
        self.file_path = file_path
        self.glob = glob
        self.parser = DatalabOCRParser(
            api_key=api_key,
            base_url=base_url,
            local=local,
            max_pages=max_pages,
            page_range=page_range,
            skip_cache=skip_cache,
            timeout=timeout,
            polling=polling,
            retry=retry,
            concurrency=concurrency,
            errors=errors,
            show_progress=show_progress,
            mode=mode,
            include_geometry=include_geometry,
            include_line_map=include_line_map,
            client=client,
            async_client=async_client,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.file_path!r}, glob={self.glob!r}, {self.parser!r})"

    @property
    def failures(self) -> list[BatchItem]:
        """Files that failed in the last load, with ``errors="collect"``."""
        return self.parser.failures

    def lazy_load(self) -> Iterator[Document]:
        """Yield documents in input order, up to ``concurrency`` files OCRed at once."""
        blobs = [Blob.from_path(path) for path in self._paths()]
        yield from self.parser.lazy_parse_many(blobs)

    def close(self) -> None:
        """Close the sync client the loader built (a client passed in is left open)."""
        self.parser.close()

    async def aclose(self) -> None:
        """Close the clients the loader built (clients passed in are left open)."""
        await self.parser.aclose()

    def alazy_load(self) -> DocumentStream[Document]:
        """Stream each file's documents as soon as it completes (completion order), up to
        ``concurrency`` files at once; pages of one file keep their order.

        To stop early, close the stream (``async with contextlib.aclosing(loader.alazy_load())
        as documents:``): files not yet started are never sent, and jobs already submitted
        are resumed by the next load; a bare ``break`` does the same once it is dropped.
        """

        def opener() -> tuple[
            FileRecords, Callable[[tuple[int, list[PageRecord]]], list[Document]]
        ]:
            # The directory is read when the stream starts, as a generator would.
            blobs = [Blob.from_path(path) for path in self._paths()]
            return self.parser._open_stream(blobs)

        return DocumentStream(opener)

    def _paths(self) -> list[Path]:
        """The files to load, resolved now (a directory's content may change over time)."""
        given = (
            [self.file_path]
            if isinstance(self.file_path, (str, os.PathLike))
            else list(self.file_path)
        )
        paths: list[Path] = []
        for item in given:
            path = Path(item)
            if path.is_dir():
                paths.extend(_files_in(path, self.glob))
            else:
                # A missing or unreadable file fails in the parser, with its name.
                paths.append(path)
        return paths


def _files_in(directory: Path, glob: str | None) -> list[Path]:
    found = sorted(directory.glob(glob or "**/*"))
    files = [path for path in found if path.is_file()]
    if glob is None:
        files = [path for path in files if path.suffix.lower() in _SUPPORTED_SUFFIXES]
    if not files:
        # An empty directory is most likely a wrong path or glob; say so instead of
        # returning nothing.
        raise InvalidInputError(
            f"no files to OCR in {directory} (glob {glob or 'of supported types'!r})",
            filename=str(directory),
        )
    return files


def _source_file(blob: Blob) -> SourceFile:
    name = blob.source
    if blob.data is None and blob.path is not None:
        return SourceFile(file=str(blob.path), source=name or str(blob.path))
    if not name:
        raise InvalidInputError(
            "a blob without a path or a 'source' in its metadata cannot be named in the "
            "documents; build it with Blob.from_data(data, path='report.pdf')"
        )
    return SourceFile.from_bytes(blob.as_bytes(), name)


def _to_document(record: PageRecord, source: SourceFile, extra: dict[str, Any]) -> Document:
    metadata: dict[str, Any] = {**extra, "source": source.source}
    if record.page_index is not None:
        # LangChain's PDF loaders number pages from 0 in "page".
        metadata["page"] = record.page_index
    metadata.update(record.metadata)
    return Document(id=record.id, page_content=record.text, metadata=metadata)


class DatalabOCRTextSplitter(TextSplitter):
    """Splits the loader's documents into chunks by size, each knowing where it stands.

    A LangChain ``TextSplitter``: ``split_documents``, ``transform_documents`` and
    ``create_documents`` work as usual, and so do ``from_tiktoken_encoder`` and
    ``from_huggingface_tokenizer`` (sizes in tokens). Chunks are runs of whole OCR lines of
    at most ``chunk_size`` (measured by ``length_function``: characters by default),
    neighbours sharing up to ``chunk_overlap``; a line longer than a chunk is cut at spaces
    and each piece keeps the line's box. Every chunk gets ``bboxes``: a JSON list of
    ``{"page_index", "x0", "y0", "x1", "y1"}`` in page fractions (0..1, origin top-left of
    the page as displayed), one entry per page it touches, the union of its lines there
    (read it with ``datalab_ocr.decode_bboxes``); ``bboxes_complete`` says whether every
    line had a box; ``line_bboxes`` (with ``include_line_boxes=True``) lists each line's
    box. The page's line map is not copied into the chunks.

    Documents from other loaders (no line map) are split the same way, without ``bboxes``;
    a warning says so once per splitter. A chunk's text is exactly a slice of its
    document's text, at ``metadata["start_index"]`` with ``add_start_index=True``.
    """

    def __init__(
        self,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
        length_function: Callable[[str], int] = len,
        *,
        add_start_index: bool = False,
        include_line_boxes: bool = False,
        **kwargs: Any,
    ) -> None:
        # Other TextSplitter arguments (keep_separator, strip_whitespace) do not apply: the
        # chunks are slices of the text, cut between lines.
        if kwargs:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(kwargs))}")
        super().__init__(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            length_function=length_function,
            add_start_index=add_start_index,
        )
        self._settings = ChunkSettings(chunk_size, chunk_overlap, length_function)
        self._include_line_boxes = include_line_boxes
        self._warned: set[str] = set()

    def split_text(self, text: str) -> list[str]:
        """Split plain text (no line map, so no boxes) along its lines."""
        return [chunk.text for chunk in split(text, None, self._settings)]

    def create_documents(
        self, texts: list[str], metadatas: list[dict[Any, Any]] | None = None
    ) -> list[Document]:
        """Split each text, with its metadata, into chunk documents with ``bboxes``."""
        documents = []
        for position, text in enumerate(texts):
            metadata = dict(metadatas[position]) if metadatas else {}
            line_map = line_map_of(text, metadata, self._warned)
            metadata.pop(LINE_MAP_KEY, None)
            for chunk in split(text, line_map, self._settings):
                chunk_metadata = copy.deepcopy(metadata)
                chunk_metadata.update(chunk.metadata(self._include_line_boxes))
                if self._add_start_index:
                    chunk_metadata["start_index"] = chunk.start
                documents.append(Document(page_content=chunk.text, metadata=chunk_metadata))
        return documents
