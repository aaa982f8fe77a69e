"""A LlamaIndex reader for the Datalab OCR API: one ``Document`` per page.

Needs the ``llama-index`` extra (``pip install 'datalab-ocr[llama-index]'``)::

    from llama_index.core import SimpleDirectoryReader
    from datalab_ocr.llama_index import DatalabOCRReader

    reader = DatalabOCRReader()                  # DATALAB_API_KEY from the environment
    documents = SimpleDirectoryReader(
        "scans/", file_extractor={".pdf": reader, ".png": reader, ".jpg": reader}
    ).load_data()

The reader is serializable (``to_dict``/``to_json``) without its API key, which comes back
from the ``DATALAB_API_KEY`` environment variable or an ``api_key=`` argument.

:class:`DatalabOCRNodeParser` splits its documents into nodes that carry the page regions
their text came from (``bboxes``), for citations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from pathlib import PurePath
from typing import Any

from ._extras import require_extra

with require_extra(__name__, "llama-index", "llama_index", "LlamaIndex"):
    from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr, SecretStr
    from llama_index.core.node_parser import NodeParser
    from llama_index.core.node_parser.node_utils import build_nodes_from_splits
    from llama_index.core.readers.base import BasePydanticReader
    from llama_index.core.schema import BaseNode, Document, MetadataMode, TextNode
    from llama_index.core.utils import get_tqdm_iterable

from ._async_client import AsyncDatalabClient
from ._batch import DEFAULT_CONCURRENCY, BatchItem, ErrorPolicy
from ._chunks import (
    CHUNK_KEYS,
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    ChunkSettings,
    line_map_of,
    split,
)
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
    hidden_keys,
    iter_records,
)
from ._geometry import LINE_MAP_KEY
from ._policies import PollPolicy, RetryPolicy

__all__ = ["DatalabOCRNodeParser", "DatalabOCRReader", "DocumentStream"]

FilePath = str | PurePath
"""A file to read: a local path, or a path on the ``fs`` filesystem."""


class DatalabOCRReader(BasePydanticReader):
    """Reads PDFs, images and Office files through the Datalab OCR API.

    Every page becomes a ``Document`` whose text is the page's OCR lines, one per line, with
    ``file_path``, ``file_name``, ``page_label`` (1-based) and ``page_index`` (0-based) among
    its metadata (``mode="file"`` gives one document per file). Document ids are derived from
    the file's content, so re-ingesting a file updates its documents instead of duplicating
    them. Errors propagate, naming the file: a failed job never yields an empty list.

    ``client`` and ``async_client`` let you pass clients you built yourself (proxies, tests);
    the connection fields are then ignored and the reader does not close them. Otherwise the
    reader builds its clients on first use and reuses them; call :meth:`close` (or
    :meth:`aclose`) when done.
    """

    is_remote: bool = True
    api_key: SecretStr | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="Datalab API key; defaults to the DATALAB_API_KEY environment variable. "
        "Never serialized.",
    )
    base_url: str | None = Field(
        default=None,
        description="Service URL; defaults to DATALAB_BASE_URL, then https://www.datalab.to.",
    )
    local: bool = Field(
        default=False, description="OCR on the embedded local server instead (no key needed)."
    )
    max_pages: int | None = Field(default=None, ge=1, description="Most pages per file.")
    page_range: str | list[int] | None = Field(
        default=None, description="0-based pages to OCR, like '0,2-4'; overrides max_pages."
    )
    skip_cache: bool = Field(default=False, description="Re-run OCR instead of using the cache.")
    timeout: float | None = Field(default=None, gt=0, description="Per-request HTTP timeout (s).")
    polling: PollPolicy | None = Field(
        default=None, description="Poll interval and overall job deadline."
    )
    retry: RetryPolicy | None = Field(default=None, description="Retries of single requests.")
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, description="Files OCRed at once.")
    errors: ErrorPolicy = Field(
        default="raise",
        description="A failed file: 'raise' (stop), 'skip' (log, go on) or 'collect' (log, "
        "go on, and keep it in .failures).",
    )
    show_progress: bool = Field(
        default=False, description="Show a progress bar over files and pages."
    )
    mode: Mode = Field(default="page", description="'page': a document per page; 'file': one.")
    include_geometry: bool = Field(
        default=False, description="Add the lines' boxes and confidences as JSON metadata."
    )
    include_line_map: bool = Field(
        default=True,
        description="Add the compact line map the citation splitters need "
        "(DatalabOCRNodeParser); False leaves it out.",
    )

    _client: DatalabClient | None = PrivateAttr(default=None)
    _async_client: AsyncDatalabClient | None = PrivateAttr(default=None)
    _async_loop: asyncio.AbstractEventLoop | None = PrivateAttr(default=None)
    _owns_client: bool = PrivateAttr(default=True)
    _owns_async_client: bool = PrivateAttr(default=True)
    _failures: list[BatchItem] = PrivateAttr(default_factory=list)

    def __init__(
        self,
        *,
        client: DatalabClient | None = None,
        async_client: AsyncDatalabClient | None = None,
        **data: Any,
    ) -> None:
        super().__init__(**data)
        # Fail at construction on a bad page_range or max_pages, not on the first file.
        self._load_options()
        self._client = client
        self._async_client = async_client
        self._owns_client = client is None
        self._owns_async_client = async_client is None

    def __getstate__(self) -> dict[Any, Any]:
        # Clients hold connection pools and locks and cannot be pickled; a copy (such as the
        # one SimpleDirectoryReader sends to each worker process) builds its own on first use.
        # The key stays behind too, as in to_dict(): the copy takes it from DATALAB_API_KEY,
        # which worker processes inherit.
        state: dict[Any, Any] = BaseModel.__getstate__(self)
        state["__dict__"] = {**state["__dict__"], "api_key": None}
        state["__pydantic_private__"] = None
        return state

    @property
    def failures(self) -> list[BatchItem]:
        """Files that failed in the last load, with ``errors="collect"``: each names the file
        and holds its error (with the request id, when a job was submitted)."""
        return list(self._failures)

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex uses to identify this component when serializing it."""
        return "DatalabOCRReader"

    # Loading.

    def load_data(
        self,
        file_path: FilePath | Sequence[FilePath],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> list[Document]:
        """OCR one file or several, up to ``concurrency`` at once; documents in input order.

        ``extra_info`` is merged into every document's metadata (its values win). ``fs`` is
        an fsspec filesystem to read the files from, as ``SimpleDirectoryReader`` passes it.
        """
        by_position = dict(self._records(file_path, extra_info, fs))
        return [document for position in sorted(by_position) for document in by_position[position]]

    def lazy_load_data(
        self,
        file_path: FilePath | Sequence[FilePath],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> Iterator[Document]:
        """Yield documents in input order, up to ``concurrency`` files OCRed at once: each
        file's as soon as it and every file before it are done."""
        for _, documents in self._records(file_path, extra_info, fs):
            yield from documents

    async def aload_data(
        self,
        file_path: FilePath | Sequence[FilePath],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> list[Document]:
        """OCR the files with up to ``concurrency`` jobs at once; documents in input order."""
        records, convert = self._open_stream(_as_list(file_path), extra_info, fs)
        by_position: dict[int, list[Document]] = {}
        async with records:
            async for position, file_records in records:
                by_position[position] = convert((position, file_records))
        return [document for position in sorted(by_position) for document in by_position[position]]

    def alazy_load_data(  # type: ignore[override]
        self,
        file_path: FilePath | Sequence[FilePath],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> DocumentStream[Document]:
        """Stream documents with ``async for``, each file's as soon as it completes.

        Files run up to ``concurrency`` at once, so files may arrive out of input order;
        pages of one file keep their order. ``await reader.alazy_load_data(...)`` also works
        (it returns the list), as the base class promises. To stop early, close the stream
        (``async with contextlib.aclosing(reader.alazy_load_data(...)) as documents:``):
        files not yet started are never sent, and jobs already submitted are resumed by the
        next load; a bare ``break`` does the same once the stream is dropped.
        """
        # The base class declares a coroutine returning an iterable, which cannot stream;
        # DocumentStream is both awaitable and async-iterable, so it serves either use.
        paths = _as_list(file_path)
        return DocumentStream(lambda: self._open_stream(paths, extra_info, fs))

    # Files become documents through the clients' batch API, in one place for each client.

    def _records(
        self, file_path: FilePath | Sequence[FilePath], extra_info: dict[str, Any] | None, fs: Any
    ) -> Iterator[tuple[int, list[Document]]]:
        sources = [_source_file(path, fs) for path in _as_list(file_path)]
        records = iter_records(self._sync_client(), sources, **self._load_arguments())
        for position, file_records in records:
            source = sources[position]
            yield position, [_to_document(record, source, extra_info) for record in file_records]

    def _open_stream(
        self, paths: list[FilePath], extra_info: dict[str, Any] | None, fs: Any
    ) -> tuple[FileRecords, Callable[[tuple[int, list[PageRecord]]], list[Document]]]:
        sources = [_source_file(path, fs) for path in paths]
        records = aiter_records(self._async(), sources, **self._load_arguments())

        def convert(file: tuple[int, list[PageRecord]]) -> list[Document]:
            position, file_records = file
            return [_to_document(record, sources[position], extra_info) for record in file_records]

        return records, convert

    # Clients, built once on first use.

    def _client_settings(self) -> ClientSettings:
        return ClientSettings(
            api_key=self.api_key.get_secret_value() if self.api_key is not None else None,
            base_url=self.base_url,
            local=self.local,
            timeout=self.timeout,
            polling=self.polling,
            retry=self.retry,
        )

    def _load_arguments(self) -> dict[str, Any]:
        """The settings of one load; starts a fresh list of its failures."""
        self._failures = []
        return {
            "options": self._load_options(),
            "concurrency": self.concurrency,
            "errors": self.errors,
            "show_progress": self.show_progress,
            "failures": self._failures,
        }

    def _load_options(self) -> LoadOptions:
        return LoadOptions(
            max_pages=self.max_pages,
            page_range=self.page_range,
            skip_cache=self.skip_cache,
            mode=self.mode,
            include_geometry=self.include_geometry,
            include_line_map=self.include_line_map,
        )

    def _sync_client(self) -> DatalabClient:
        if self._client is None:
            self._client = self._client_settings().sync_client()
        return self._client

    def _async(self) -> AsyncDatalabClient:
        if not self._owns_async_client:
            assert self._async_client is not None
            return self._async_client
        # An httpx.AsyncClient belongs to the event loop it first ran on; a notebook or a
        # test suite may call us from a new loop each time, so build one client per loop.
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_loop is not loop:
            self._async_client = self._client_settings().async_client()
            self._async_loop = loop
        return self._async_client

    def close(self) -> None:
        """Close the sync client this reader built (clients passed in are left open)."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the clients this reader built (clients passed in are left open)."""
        self.close()
        if self._owns_async_client and self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None


def _as_list(file_path: FilePath | Sequence[FilePath]) -> list[FilePath]:
    if isinstance(file_path, (str, PurePath)):
        return [file_path]
    return list(file_path)


def _source_file(path: FilePath, fs: Any) -> SourceFile:
    if fs is None:
        return SourceFile.from_path(path)
    # A filesystem may be remote (S3, GCS, memory): read the bytes through it; the name keeps
    # its path on that filesystem.
    with fs.open(str(path), "rb") as stream:
        data = stream.read()
    return SourceFile.from_bytes(data, str(path))


def _to_document(
    record: PageRecord, source: SourceFile, extra_info: dict[str, Any] | None
) -> Document:
    metadata: dict[str, Any] = {
        "file_path": source.source,
        "file_name": source.name,
        **record.metadata,
        **(extra_info or {}),
    }
    hidden = hidden_keys(metadata)
    return Document(
        id_=record.id,
        text=record.text,
        metadata=metadata,
        excluded_embed_metadata_keys=list(hidden),
        excluded_llm_metadata_keys=list(hidden),
    )


class DatalabOCRNodeParser(NodeParser):
    """Splits the reader's documents into nodes by size, each knowing where it stands.

    Chunks are runs of whole OCR lines of at most ``chunk_size`` characters (or tokens, with
    ``tokenizer``), neighbours sharing up to ``chunk_overlap``; a line longer than a chunk
    is cut at spaces and each piece keeps the line's box. Every node gets ``bboxes``: a JSON
    list of ``{"page_index", "x0", "y0", "x1", "y1"}`` in page fractions (0..1, origin
    top-left of the page as displayed), one entry per page it touches, the union of its
    lines there (read it with ``datalab_ocr.decode_bboxes``); ``bboxes_complete`` says
    whether every line had a box; ``line_bboxes`` (with ``include_line_boxes=True``) lists
    each line's box. These keys and the page's line map stay out of embeddings and prompts;
    the line map itself is not copied into the nodes.

    Documents from other readers (no line map) are split the same way, without ``bboxes``;
    a warning says so once per parser. Use it as any node parser: ``parser(documents)``,
    ``get_nodes_from_documents``, in an ``IngestionPipeline`` or as a transformation of
    ``VectorStoreIndex.from_documents``.
    """

    chunk_size: int = Field(
        default=DEFAULT_CHUNK_SIZE, gt=0, description="Most characters (or tokens) per node."
    )
    chunk_overlap: int = Field(
        default=DEFAULT_CHUNK_OVERLAP,
        ge=0,
        description="Most characters (or tokens) a node shares with the one before it.",
    )
    tokenizer: Callable[[str], Sequence[Any]] | None = Field(
        default=None,
        exclude=True,
        description="Measure sizes in tokens: a function from text to its tokens (such as "
        "tiktoken's encode). None: characters.",
    )
    include_line_boxes: bool = Field(
        default=False, description="Add line_bboxes: each line's box, beside the union."
    )

    _warned: set[str] = PrivateAttr(default_factory=set)
    _offsets: dict[str, tuple[int, int]] = PrivateAttr(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._settings()  # a bad size or overlap fails here, not on the first document

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex uses to identify this component when serializing it."""
        return "DatalabOCRNodeParser"

    def _settings(self) -> ChunkSettings:
        tokenizer = self.tokenizer
        return ChunkSettings(
            chunk_size=self.chunk_size,
            chunk_overlap=self.chunk_overlap,
            length=len if tokenizer is None else (lambda text: len(tokenizer(text))),
        )

    def _parse_nodes(
        self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any
    ) -> list[BaseNode]:
        settings = self._settings()
        parsed: list[BaseNode] = []
        for node in get_tqdm_iterable(nodes, show_progress, "Parsing nodes"):
            text = node.get_content(metadata_mode=MetadataMode.NONE)
            chunks = split(text, line_map_of(text, node.metadata, self._warned), settings)
            built = build_nodes_from_splits(
                [chunk.text for chunk in chunks], node, id_func=self.id_func
            )
            for chunk, child in zip(chunks, built, strict=True):
                child.metadata.update(chunk.metadata(self.include_line_boxes))
                # New lists: the builder hands every node the parent's own list objects.
                child.excluded_embed_metadata_keys = _hide(child.excluded_embed_metadata_keys)
                child.excluded_llm_metadata_keys = _hide(child.excluded_llm_metadata_keys)
                child.start_char_idx, child.end_char_idx = chunk.start, chunk.end
                self._offsets[child.node_id] = (chunk.start, chunk.end)
            parsed.extend(built)
        return parsed

    def _postprocess_parsed_nodes(
        self, nodes: list[BaseNode], parent_doc_map: dict[str, Document]
    ) -> list[BaseNode]:
        nodes = super()._postprocess_parsed_nodes(nodes, parent_doc_map)
        offsets, self._offsets = self._offsets, {}
        for node in nodes:
            # The page's line map came back with the parent's metadata; it describes the
            # page's text, not the node's, and would only weigh on every stored node.
            node.metadata.pop(LINE_MAP_KEY, None)
            # The base class finds each node's text in its parent again, which can land on
            # an earlier copy of repeated text; the splitter knows where each node came from.
            if isinstance(node, TextNode) and node.node_id in offsets:
                node.start_char_idx, node.end_char_idx = offsets[node.node_id]
        return nodes


def _hide(keys: list[str]) -> list[str]:
    return [key for key in keys if key != LINE_MAP_KEY] + [
        key for key in CHUNK_KEYS if key not in keys
    ]
