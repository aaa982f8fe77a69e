"""Local mode: the local server's engine, called in Ray workers without any HTTP server.

Two stages. :class:`SplitDocuments` (plain tasks) opens each file, picks the pages asked for
and cuts a PDF into chunks of a few pages, each a small PDF of its own (PDFium copies the
pages with their text layers), so the pages of one long document spread over the whole
cluster and only a chunk's bytes travel to the worker that runs it. :class:`PageEngine`
(an actor pool) loads the OCR engine once per actor and turns chunks into page rows through
the same two engine calls the server's runner makes (``prepare_document`` and
``process_pages``).

Each chunk is a unit of work: with a result store, a finished chunk is stored under the
file's hash, the options and its first page, so a re-run skips it and a retried task
redoes only its own chunk.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from datalab_ocr._batch import ErrorPolicy
from datalab_ocr._documents import LoadOptions
from datalab_ocr._exceptions import DatalabError, JobError
from datalab_ocr._inputs import prepare_upload
from datalab_ocr._models import OCRPage, OCRResult
from datalab_ocr._options import OCROptions

from ._files import ResultStore, local_copy
from ._report import TallyClient
from ._rows import ROW_SCHEMA, error_row, page_rows

__all__ = ["CHUNK_SCHEMA", "LocalSettings", "PageEngine", "SplitDocuments"]

logger = logging.getLogger(__name__)

CHUNK_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("sha256", pa.string()),
        ("kind", pa.string()),
        ("suffix", pa.string()),
        ("pages", pa.list_(pa.int64())),
        ("total_pages", pa.int64()),
        ("first", pa.bool_()),
        ("data", pa.binary()),
        ("error", pa.string()),
    ]
)
"""A unit of local work: some pages of one file, with the bytes needed to process them."""


@dataclass(frozen=True)
class LocalSettings:
    """How the local stages run."""

    engine: str = "tesseract"
    render_scale: float = 2.0
    max_image_pixels: int = 100_000_000
    office_timeout: float = 120.0
    chunk_pages: int = 8
    options: LoadOptions = field(default_factory=LoadOptions)
    errors: ErrorPolicy = "raise"
    filesystem: Any = None
    store: ResultStore | None = None
    progress: str | None = None

    def result_key(self, sha256: str, first_page: int) -> str:
        """Where a chunk's rows are stored: content, engine, pages asked for, first page."""
        selection = self.options.selection().replace(",", "_").replace(":", "")
        return f"{sha256}-local-{self.engine}-{self.render_scale:g}-{selection}-p{first_page}"


def _selected(options: LoadOptions, page_count: int) -> list[int]:
    chosen = OCROptions.build(max_pages=options.max_pages, page_range=options.page_range)
    if chosen.page_range is not None:
        return [index for index in chosen.page_range if index < page_count]
    limit = page_count if chosen.max_pages is None else min(chosen.max_pages, page_count)
    return list(range(limit))


class SplitDocuments:
    """Files (``path``, optionally ``bytes``) to chunks of pages; runs as plain Ray tasks."""

    def __init__(self, settings: LocalSettings) -> None:
        self._settings = settings

    def __call__(self, batch: pa.Table) -> pa.Table:
        """The chunks of every file in the batch; a file that cannot be opened is one chunk
        with ``error`` set (or raises, with ``errors="raise"``)."""
        paths = batch.column("path").to_pylist()
        datas = batch.column("bytes").to_pylist() if "bytes" in batch.column_names else None
        chunks: list[dict[str, Any]] = []
        for position, path in enumerate(paths):
            data = None if datas is None else datas[position]
            try:
                chunks.extend(self._split(path, data))
            except Exception as error:  # as in the server: a bad document fails alone
                if isinstance(error, DatalabError):
                    error.filename = path
                if self._settings.errors == "raise":
                    if isinstance(error, DatalabError):
                        raise
                    raise JobError(f"{type(error).__name__}: {error}", filename=path) from error
                chunks.append(_failed_chunk(path, f"{type(error).__name__}: {error}"))
        return pa.Table.from_pylist(chunks, schema=CHUNK_SCHEMA)

    def _split(self, path: str, data: bytes | None) -> list[dict[str, Any]]:
        from datalab_ocr.server.engine import DocumentError, prepare_document
        from datalab_ocr.server.formats import PDF, detect_kind, office_suffix

        settings = self._settings
        copy = local_copy(path, settings.filesystem, data)
        folder = tempfile.mkdtemp(prefix="datalab-ocr-split-")
        try:
            name = os.path.basename(path)
            # The clients' checks before upload, so both modes refuse the same files alike
            # (a truncated download above all, which PDFium would read in part, silently).
            prepare_upload(copy.path, name, shown_as=path)
            with open(copy.path, "rb") as stream:
                head = stream.read(2048)
            kind = detect_kind(head, name, None)
            suffix = office_suffix(name, None)
            # prepare_document may rename the file (Office conversion): give it its own copy.
            work = os.path.join(folder, "upload")
            shutil.copyfile(copy.path, work)
            document = prepare_document(
                work,
                kind,
                suffix=suffix,
                max_image_pixels=settings.max_image_pixels,
                office_timeout=settings.office_timeout,
            )
            pages = _selected(settings.options, document.page_count)
            if not pages:
                raise JobError(
                    f"the requested pages select no page of this {document.page_count}-page "
                    "document (page_range is 0-based)",
                    filename=path,
                )
            base = {"source": path, "sha256": copy.sha256, "total_pages": len(pages)}
            if document.kind != PDF:
                # Images (even multi-frame TIFFs) are small next to their OCR: one unit.
                with open(document.path, "rb") as stream:
                    image = stream.read()
                unit = {**base, "kind": document.kind, "suffix": suffix, "pages": pages}
                return [{**unit, "first": True, "data": image, "error": None}]
            size = max(1, settings.chunk_pages)
            groups = [pages[i : i + size] for i in range(0, len(pages), size)]
            return [
                {
                    **base,
                    "kind": PDF,
                    "suffix": ".pdf",
                    "pages": group,
                    "first": number == 0,
                    "data": self._chunk_bytes(document.path, group, copy.sha256),
                    "error": None,
                }
                for number, group in enumerate(groups)
            ]
        except DatalabError:
            raise  # already says what is wrong and names the file (InvalidInputError is one)
        except (DocumentError, ValueError) as error:
            # Raised by the engine for unreadable documents, by detect_kind for unknown types.
            raise JobError(str(error), filename=path) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            copy.discard()

    def _chunk_bytes(self, pdf_path: str, pages: list[int], sha256: str) -> bytes | None:
        settings = self._settings
        if settings.store is not None and settings.store.exists(
            settings.result_key(sha256, pages[0])
        ):
            return None  # done in an earlier run: no bytes to carry
        import pypdfium2

        source = pypdfium2.PdfDocument(pdf_path)
        target = pypdfium2.PdfDocument.new()
        try:
            target.import_pages(source, pages)
            buffer = io.BytesIO()
            target.save(buffer)
            return buffer.getvalue()
        except pypdfium2.PdfiumError as error:
            raise JobError(f"pages {pages[0]}-{pages[-1]} could not be copied: {error}") from None
        finally:
            target.close()
            source.close()


def _failed_chunk(path: str, error: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(CHUNK_SCHEMA.names)
    row.update({"source": path, "pages": [], "error": error})
    return row


class PageEngine:
    """A Ray Data actor: chunks in, page rows out; the OCR engine is loaded once per actor."""

    def __init__(self, settings: LocalSettings) -> None:
        from datalab_ocr.server.engine import _engine as load_engine
        from datalab_ocr.server.engine import base_versions, engine_versions

        self._settings = settings
        # Load the model now, not on the first scanned page; text-layer pages never need it.
        load_engine(settings.engine)
        self._versions = {**base_versions(), **engine_versions(settings.engine)}
        self._tally = TallyClient(settings.progress)

    def __call__(self, batch: pa.Table) -> pa.Table:
        """The page rows of every chunk in the batch (a failed chunk: one error row)."""
        self._tally.start()
        rows: list[dict[str, Any]] = []
        counts = {"files": 0, "pages": 0, "failures": 0, "skipped": 0}
        for chunk in batch.to_pylist():
            if chunk["error"] is not None:
                self._failed(chunk, chunk["error"], rows, counts)
                continue
            try:
                done, skipped = self._process(chunk)
            except Exception as error:  # as in the server: a bad page fails its chunk alone
                self._failed(chunk, f"{type(error).__name__}: {error}", rows, counts)
                continue
            rows.extend(done)
            counts["pages"] += len(done)
            # A file counts once: with the chunk that holds its first selected page.
            if chunk["first"]:
                counts["files"] += 1
                counts["skipped"] += int(skipped)
        self._tally.add(**counts)
        return pa.Table.from_pylist(rows, schema=ROW_SCHEMA)

    def _process(self, chunk: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        from datalab_ocr.server.engine import DocumentError, prepare_document, process_pages
        from datalab_ocr.server.formats import PDF

        settings = self._settings
        pages: list[int] = chunk["pages"]
        key = settings.result_key(chunk["sha256"], pages[0])
        if settings.store is not None:
            stored = settings.store.get(key)
            if stored is not None:
                return stored, True
        if chunk["data"] is None:
            raise JobError(
                "these pages were stored as done, but the output no longer has them: "
                "run again to redo them",
                filename=chunk["source"],
            )
        folder = tempfile.mkdtemp(prefix="datalab-ocr-chunk-")
        try:
            path = os.path.join(folder, "chunk")
            with open(path, "wb") as out:
                out.write(chunk["data"])
            document = prepare_document(
                path,
                chunk["kind"],
                suffix=chunk["suffix"],
                max_image_pixels=settings.max_image_pixels,
                office_timeout=settings.office_timeout,
            )
            # A chunk PDF holds only its pages, in order; an image keeps its frame numbers.
            local = list(range(len(pages))) if chunk["kind"] == PDF else pages
            produced = process_pages(
                document,
                local,
                engine=settings.engine,
                render_scale=settings.render_scale,
                max_image_pixels=settings.max_image_pixels,
            )
        except DocumentError as error:
            raise JobError(str(error), filename=chunk["source"]) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        result_pages = []
        for index, wire in zip(pages, produced.pages, strict=True):
            page = OCRPage.model_validate({**wire, "page": index + 1})
            page.page_index = index
            result_pages.append(page)
        result = OCRResult(
            status="complete",
            success=True,
            pages=result_pages,
            page_count=len(result_pages),
            versions=produced.versions or self._versions,
        )
        rows = page_rows(
            result,
            chunk["source"],
            chunk["sha256"],
            settings.options,
            total_pages=chunk["total_pages"],
        )
        if settings.store is not None:
            settings.store.put(key, rows)
        return rows, False

    def _failed(
        self, chunk: dict[str, Any], error: str, rows: list[dict[str, Any]], counts: dict[str, int]
    ) -> None:
        source = chunk["source"]
        pages = chunk["pages"]
        if pages:
            error = f"pages {pages[0]}-{pages[-1]}: {error}"
        if self._settings.errors == "raise":
            raise JobError(error, filename=source)
        logger.warning("skipped %s: %s", source, error)
        counts["failures"] += 1
        if self._settings.errors == "collect":
            rows.append(error_row(source, error, chunk["sha256"]))
