"""What the LlamaIndex reader and the LangChain loader share: OCR results as page records.

A :class:`PageRecord` is a framework-neutral document: its text, flat scalar metadata and a
deterministic id. The integrations only rename a few source keys and wrap records in their
framework's ``Document`` class, so both frameworks see the same text, pages and metadata.

:func:`iter_records` and :func:`aiter_records` are the single place where files become
records: they run the clients' batch API (bounded concurrency, rate limit, result cache,
resume) and apply the integration's error policy.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any, Literal

from ._async_client import AsyncDatalabClient
from ._batch import DEFAULT_CONCURRENCY, BatchItem, ErrorPolicy
from ._client import DatalabClient
from ._exceptions import InvalidInputError, JobError
from ._geometry import LINE_MAP_KEY, build_line_map
from ._inputs import FileInput, Upload, prepare_upload
from ._models import PAGE_SEPARATOR, OCRPage, OCRResult
from ._options import OCROptions
from ._page_range import PageRange, format_page_range
from ._policies import PollPolicy, RetryPolicy
from ._streams import DocumentStream, RecordStream

__all__ = [
    "GEOMETRY_KEY",
    "LINE_MAP_KEY",
    "VERSION_PREFIX",
    "ClientSettings",
    "DocumentStream",
    "FileRecords",
    "LoadOptions",
    "Mode",
    "PageRecord",
    "RecordStream",
    "Scalar",
    "SourceFile",
    "aiter_records",
    "build_records",
    "document_id",
    "hidden_keys",
    "iter_records",
]

logger = logging.getLogger(__name__)

Mode = Literal["page", "file"]
"""``"page"``: one document per page (the default); ``"file"``: one per file."""

Scalar = str | int | float | bool
"""A metadata value every vector store accepts."""

VERSION_PREFIX = "datalab_version_"
"""Prefixes each library version the service reports: ``datalab_version_surya``."""

GEOMETRY_KEY = "line_geometry"
"""The metadata key of the opt-in line geometry (a JSON string)."""

# Fixed forever: changing it would change every document id and duplicate re-ingested files.
_ID_NAMESPACE = uuid.UUID("6f1c1f38-5d0e-5b8e-9a51-0c6d1f9e4a27")

# Bookkeeping that helps filtering and auditing but would only add noise to an embedding or a
# prompt; the source, file name and page label stay visible so answers can cite them.
_HIDDEN_KEYS = frozenset(
    {
        "page_index",
        "total_pages",
        "request_id",
        "mean_confidence",
        "page_width",
        "page_height",
        GEOMETRY_KEY,
        LINE_MAP_KEY,
    }
)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How to build the clients an integration uses; the key is kept out of ``repr``."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    local: bool = False
    timeout: float | None = None
    polling: PollPolicy | None = None
    retry: RetryPolicy | None = None

    def sync_client(self) -> DatalabClient:
        """A new synchronous client with these settings."""
        return DatalabClient(
            self.api_key,
            self.base_url,
            local=self.local,
            timeout=self.timeout,
            retry=self.retry,
            polling=self.polling,
        )

    def async_client(self) -> AsyncDatalabClient:
        """A new async client with these settings."""
        return AsyncDatalabClient(
            self.api_key,
            self.base_url,
            local=self.local,
            timeout=self.timeout,
            retry=self.retry,
            polling=self.polling,
        )


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """What to ask of the service for each file, and how to cut the result into records."""

    max_pages: int | None = None
    page_range: PageRange | None = None
    skip_cache: bool = False
    mode: Mode = "page"
    include_geometry: bool = False
    include_line_map: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("page", "file"):
            raise ValueError(f"mode must be 'page' or 'file', not {self.mode!r}")
        # Fail when the loader is built, not on the first file: OCROptions checks both.
        OCROptions.build(max_pages=self.max_pages, page_range=self.page_range)

    def selection(self) -> str:
        """The pages asked for, canonically: ``"0,2-4"``, ``"max:3"`` or ``"all"``."""
        options = OCROptions.build(max_pages=self.max_pages, page_range=self.page_range)
        if options.page_range is not None:
            return format_page_range(options.page_range)
        if options.max_pages is not None:
            return f"max:{options.max_pages}"
        return "all"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file to OCR: what to upload and how its documents name it.

    ``file`` is a path (streamed from disk) or the file's bytes, which need ``filename``.
    ``source`` is the path or address as the caller knows it; ``name`` its last part.
    """

    file: FileInput
    source: str
    filename: str | None = None

    @property
    def name(self) -> str:
        """The file name, without directories."""
        return PurePath(self.source.replace("\\", "/")).name or self.source

    @classmethod
    def from_path(cls, path: str | PurePath) -> SourceFile:
        """A file on the local disk, named by its path as given."""
        return cls(file=str(path), source=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, source: str) -> SourceFile:
        """A file already in memory; ``source`` names it (a path, URL or blob source)."""
        name = PurePath(source.replace("\\", "/")).name or source
        return cls(file=data, source=source, filename=name)


@dataclass(frozen=True, slots=True)
class PageRecord:
    """A framework-neutral document: a page (or a whole file), its metadata and its id.

    ``metadata`` holds only flat scalars, and no source keys: each integration adds those
    under its framework's names.
    """

    id: str
    text: str
    metadata: dict[str, Scalar]
    page_index: int | None


def document_id(content_sha256: str, options: LoadOptions, page_index: int | None) -> str:
    """The id of one record: the same file, mode and page always give the same id.

    A page's text does not depend on which other pages were asked for, so in page mode the
    id ignores ``page_range`` and ``max_pages``: re-ingesting a file with a wider selection
    updates the pages already stored. A whole-file record does change with the selection,
    so in file mode the id includes it. ``skip_cache``, ``include_geometry`` and
    ``include_line_map`` never change what is embedded, so they never change the id. The
    path is not part of the id either: the same content under two names is the same
    document.
    """
    key: dict[str, Any] = {"sha256": content_sha256, "mode": options.mode}
    if options.mode == "page":
        key["page_index"] = page_index
    else:
        key["pages"] = options.selection()
    canonical = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return str(uuid.uuid5(_ID_NAMESPACE, canonical))


def hidden_keys(metadata: dict[str, Any]) -> list[str]:
    """The keys of ``metadata`` to keep out of embeddings and prompts."""
    return [key for key in metadata if key in _HIDDEN_KEYS or key.startswith(VERSION_PREFIX)]


def build_records(
    result: OCRResult, source: SourceFile, content_sha256: str, options: LoadOptions
) -> list[PageRecord]:
    """Map a complete result to records: one per page, or one per file in file mode.

    Raises :class:`JobError` for a result without pages: an empty list would make a file
    silently vanish from an index.
    """
    if not result.pages:
        raise JobError(
            "the service reported success but returned no pages",
            filename=source.source,
            request_id=result.request_id,
        )
    shared = _result_metadata(result)
    if options.mode == "file":
        return [_file_record(result, shared, content_sha256, options)]
    records = []
    for position, page in enumerate(result.pages):
        index = page.page_index if page.page_index is not None else position
        metadata: dict[str, Scalar] = {
            "page_index": index,
            "page_label": str(index + 1),
            **shared,
            **_page_metadata(page),
        }
        # On by default, whatever else is asked: the splitters need it to place chunks.
        if options.include_line_map:
            metadata[LINE_MAP_KEY] = build_line_map([(index, page)], PAGE_SEPARATOR)
        if options.include_geometry:
            metadata[GEOMETRY_KEY] = _geometry([page], with_page=False)
        if not page.text_lines:
            logger.info("page %d of %s has no text", index + 1, source.source)
        records.append(
            PageRecord(document_id(content_sha256, options, index), page.text, metadata, index)
        )
    return records


def _file_record(
    result: OCRResult, shared: dict[str, Scalar], content_sha256: str, options: LoadOptions
) -> PageRecord:
    metadata = dict(shared)
    confidences = [
        line.confidence
        for page in result.pages
        for line in page.text_lines
        if line.confidence is not None
    ]
    if confidences:
        metadata["mean_confidence"] = sum(confidences) / len(confidences)
    pages = [
        (page.page_index if page.page_index is not None else position, page)
        for position, page in enumerate(result.pages)
    ]
    if options.include_line_map:
        metadata[LINE_MAP_KEY] = build_line_map(pages, PAGE_SEPARATOR)
    if options.include_geometry:
        metadata[GEOMETRY_KEY] = _geometry(result.pages, with_page=True)
    text = PAGE_SEPARATOR.join(page.text for page in result.pages)
    return PageRecord(document_id(content_sha256, options, None), text, metadata, None)


def _result_metadata(result: OCRResult) -> dict[str, Scalar]:
    metadata: dict[str, Scalar] = {"total_pages": len(result.pages)}
    if result.request_id:
        metadata["request_id"] = result.request_id
    metadata.update(_flatten_versions(result.versions))
    return metadata


def _page_metadata(page: OCRPage) -> dict[str, Scalar]:
    # Absent rather than None: several vector stores refuse None metadata values.
    values = {
        "mean_confidence": page.mean_confidence,
        "page_width": page.width,
        "page_height": page.height,
    }
    return {key: value for key, value in values.items() if value is not None}


_UNSAFE_KEY = re.compile(r"[^0-9A-Za-z_]+")


def _flatten_versions(versions: dict[str, Any], prefix: str = VERSION_PREFIX) -> dict[str, Scalar]:
    """``{"surya": "0.4", "models": {"det": "1"}}`` as ``datalab_version_surya`` and so on."""
    flat: dict[str, Scalar] = {}
    for name, value in versions.items():
        key = prefix + _UNSAFE_KEY.sub("_", str(name)).strip("_").lower()
        if isinstance(value, dict):
            flat.update(_flatten_versions(value, key + "_"))
        elif isinstance(value, (str, int, float, bool)):
            flat[key] = value
        elif value is not None:
            flat[key] = json.dumps(value, sort_keys=True)
    return flat


def _geometry(pages: Sequence[OCRPage], *, with_page: bool) -> str:
    """The lines as a JSON string (text, bbox, confidence), so metadata stays flat."""
    lines = []
    for page in pages:
        for line in page.text_lines:
            entry: dict[str, Any] = {
                "text": line.text,
                "bbox": line.bbox,
                "confidence": line.confidence,
            }
            if with_page:
                entry["page_index"] = page.page_index
            lines.append(entry)
    return json.dumps(lines, separators=(",", ":"), ensure_ascii=False)


def _prepare(
    sources: Sequence[SourceFile], errors: ErrorPolicy, failures: list[BatchItem] | None
) -> list[tuple[int, Upload]]:
    """Check every file before any is uploaded: ``(position, upload)`` for the good ones.

    A refused file raises with ``errors="raise"`` (so nothing was uploaded yet); otherwise it
    is logged, recorded in ``failures`` when collecting, and left out.
    """
    prepared: list[tuple[int, Upload]] = []
    for position, source in enumerate(sources):
        try:
            prepared.append((position, prepare_upload(source.file, source.filename)))
        except InvalidInputError as error:
            _failed(BatchItem(position, source.source, error=error), source, errors, failures)
    return prepared


def _failed(
    item: BatchItem,
    source: SourceFile,
    errors: ErrorPolicy,
    failures: list[BatchItem] | None,
    *,
    reported: bool = False,
) -> None:
    """Apply the load's error policy to a failed file. ``reported``: the batch has already
    logged the failure under the same name, so it is not logged twice."""
    error = item.error
    assert error is not None
    # Name the file as the caller knows it (a blob source, a path on a remote filesystem).
    error.filename = source.source
    if errors == "raise":
        raise error
    if not reported or item.source != source.source:
        logger.warning("failed: %s: %s", source.source, error)
    if errors == "collect" and failures is not None:
        failures.append(BatchItem(item.index, source.source, error=error))


def _records(
    item: BatchItem,
    source: SourceFile,
    upload: Upload,
    options: LoadOptions,
    errors: ErrorPolicy,
    failures: list[BatchItem] | None,
) -> list[PageRecord] | None:
    if item.result is not None:
        try:
            return build_records(item.result, source, upload.sha256(), options)
        except JobError as error:
            item = BatchItem(item.index, item.source, error=error)
            _failed(item, source, errors, failures)
            return None
    _failed(item, source, errors, failures, reported=True)
    return None


class _Load:
    """One load of many files: checked up front, each batch outcome turned into records
    under the error policy, and handed over in input order (or as they come)."""

    def __init__(
        self,
        sources: Sequence[SourceFile],
        options: LoadOptions,
        errors: ErrorPolicy,
        failures: list[BatchItem] | None,
        ordered: bool,
    ) -> None:
        self._sources = sources
        self._options = options
        self._errors = errors
        self._failures = failures
        self._ordered = ordered
        self._prepared = _prepare(sources, errors, failures)
        self._next = 0
        self._held: dict[int, list[PageRecord] | None] = {}

    def batch_arguments(self, concurrency: int, show_progress: bool) -> dict[str, Any]:
        """What to pass to a client's ``iter_batch``."""
        options = self._options
        return {
            "files": [upload for _, upload in self._prepared],
            "concurrency": concurrency,
            "show_progress": show_progress,
            "max_pages": options.max_pages,
            "page_range": options.page_range,
            "skip_cache": options.skip_cache,
            # The policy is applied here, so the caller gets the file's own error, named as
            # the caller knows the file; the batch only reports.
            "errors": "collect",
        }

    def take(self, item: BatchItem) -> Iterator[tuple[int, list[PageRecord]]]:
        """The files ready to hand over once ``item`` (a batch outcome) has arrived."""
        position, upload = self._prepared[item.index]
        records = _records(
            replace(item, index=position),
            self._sources[position],
            upload,
            self._options,
            self._errors,
            self._failures,
        )
        if not self._ordered:
            if records is not None:
                yield position, records
            return
        self._held[position] = records
        while self._next < len(self._prepared) and self._prepared[self._next][0] in self._held:
            ready = self._prepared[self._next][0]
            self._next += 1
            done = self._held.pop(ready)
            if done is not None:
                yield ready, done


def iter_records(
    client: DatalabClient,
    sources: Sequence[SourceFile],
    options: LoadOptions,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    errors: ErrorPolicy = "raise",
    show_progress: bool = False,
    failures: list[BatchItem] | None = None,
    ordered: bool = True,
) -> Iterator[tuple[int, list[PageRecord]]]:
    """OCR ``sources`` through the client's batch API, up to ``concurrency`` at once.

    Yields ``(position in sources, records)`` per file: in input order when ``ordered`` (a
    file is handed over as soon as it and every file before it are done), else in
    completion order. Failures follow ``errors``: ``"raise"`` raises the first file's own
    error (named after the file), ``"skip"`` logs it, ``"collect"`` also appends it to
    ``failures``. A failed job never turns into an empty list of records.
    """
    load = _Load(sources, options, errors, failures, ordered)
    batch = client.iter_batch(**load.batch_arguments(concurrency, show_progress))
    try:
        for item in batch:
            yield from load.take(item)
    finally:
        batch.close()


Take = Callable[[BatchItem], Iterator[tuple[int, list[PageRecord]]]]

FileRecords = RecordStream[tuple[int, list[PageRecord]]]
"""Each file's position in the input and its records, as files complete."""


def aiter_records(
    client: AsyncDatalabClient,
    sources: Sequence[SourceFile],
    options: LoadOptions,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    errors: ErrorPolicy = "raise",
    show_progress: bool = False,
    failures: list[BatchItem] | None = None,
    ordered: bool = False,
) -> FileRecords:
    """The async twin of :func:`iter_records`, on the async client's batch API; by default
    in completion order, so each file streams as soon as it is done.

    Nothing runs until the first ``async for`` step. Close the stream to stop early (see
    :class:`~._streams.RecordStream`)."""

    def start() -> tuple[AsyncGenerator[BatchItem, None], Take]:
        load = _Load(sources, options, errors, failures, ordered)
        return client.iter_batch(**load.batch_arguments(concurrency, show_progress)), load.take

    return RecordStream(start)
