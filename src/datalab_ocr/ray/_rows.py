"""Rows of the OCR dataset: one per page, built from the one page-to-record mapping.

A row carries the record the LlamaIndex reader and the LangChain loader would build for the
same page (its id, text and metadata, from :func:`datalab_ocr._documents.build_records`)
plus the page's lines with their boxes. :func:`to_llama_index_documents` and
:func:`to_langchain_documents` hand the stored record to the integrations' own conversion,
so a document made from a row equals the one the reader or loader makes from the file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from datalab_ocr._documents import LoadOptions, PageRecord, SourceFile, build_records
from datalab_ocr._models import OCRResult

if TYPE_CHECKING:
    from langchain_core.documents import Document as LangChainDocument
    from llama_index.core.schema import Document as LlamaIndexDocument

__all__ = [
    "ROW_SCHEMA",
    "error_row",
    "page_rows",
    "to_langchain_documents",
    "to_llama_index_documents",
]

logger = logging.getLogger(__name__)

_LINE = pa.struct(
    [
        ("text", pa.string()),
        ("confidence", pa.float64()),
        ("bbox", pa.list_(pa.float64())),
        ("polygon", pa.list_(pa.list_(pa.float64()))),
    ]
)

ROW_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("page_index", pa.int64()),
        ("text", pa.string()),
        ("mean_confidence", pa.float64()),
        ("request_id", pa.string()),
        ("versions", pa.string()),
        ("lines", pa.list_(_LINE)),
        ("width", pa.float64()),
        ("height", pa.float64()),
        ("total_pages", pa.int64()),
        ("id", pa.string()),
        ("sha256", pa.string()),
        ("metadata", pa.string()),
        ("error", pa.string()),
    ]
)
"""The columns of every row: ``versions`` and ``metadata`` are JSON strings so the schema
stays the same whatever libraries a result names; ``error`` is set only on a failed file's
row, which has no page."""


def page_rows(
    result: OCRResult,
    source: str,
    sha256: str,
    options: LoadOptions,
    *,
    total_pages: int | None = None,
) -> list[dict[str, Any]]:
    """The rows of a complete result, one per page, in the result's order.

    ``total_pages`` overrides the page count in the metadata when ``result`` holds only
    part of a document's pages (a chunk of a long PDF).
    """
    records = build_records(result, SourceFile(file=b"", source=source), sha256, options)
    versions = json.dumps(result.versions, sort_keys=True, separators=(",", ":"))
    rows = []
    for record, page in zip(records, result.pages, strict=True):
        metadata = dict(record.metadata)
        if total_pages is not None:
            metadata["total_pages"] = total_pages
        rows.append(
            {
                "source": source,
                "page_index": record.page_index,
                "text": record.text,
                "mean_confidence": page.mean_confidence,
                "request_id": result.request_id,
                "versions": versions,
                "lines": [
                    {
                        "text": line.text,
                        "confidence": line.confidence,
                        "bbox": line.bbox,
                        "polygon": line.polygon,
                    }
                    for line in page.text_lines
                ],
                "width": page.width,
                "height": page.height,
                "total_pages": metadata["total_pages"],
                "id": record.id,
                "sha256": sha256,
                "metadata": json.dumps(metadata),
                "error": None,
            }
        )
    return rows


def error_row(source: str, error: str, sha256: str | None = None) -> dict[str, Any]:
    """The one row of a file that failed: ``error`` set, no page."""
    row: dict[str, Any] = dict.fromkeys(ROW_SCHEMA.names)
    row.update({"source": source, "error": error, "sha256": sha256, "text": "", "lines": []})
    return row


def _records(rows: Iterable[Mapping[str, Any]]) -> Iterable[tuple[PageRecord, SourceFile]]:
    for row in rows:
        error = row.get("error")
        # Batches in numpy or pandas format carry a missing error as NaN, not None.
        if isinstance(error, str) and error:
            logger.warning("no document for %s: %s", row.get("source"), error)
            continue
        index = row["page_index"]
        record = PageRecord(
            id=row["id"],
            text=row["text"],
            metadata=json.loads(row["metadata"]),
            page_index=None if index is None else int(index),
        )
        yield record, SourceFile(file=b"", source=row["source"])


def to_llama_index_documents(
    rows: Iterable[Mapping[str, Any]], extra_info: dict[str, Any] | None = None
) -> list[LlamaIndexDocument]:
    """LlamaIndex ``Document`` objects from rows, equal to what ``DatalabOCRReader`` makes.

    Rows with ``error`` set are skipped (and logged). ``rows`` is any iterable of row
    mappings: ``dataset.iter_rows()``, ``dataset.take_all()`` or a batch's rows.
    """
    from datalab_ocr.llama_index import _to_document

    return [_to_document(record, source, extra_info) for record, source in _records(rows)]


def to_langchain_documents(
    rows: Iterable[Mapping[str, Any]], extra: dict[str, Any] | None = None
) -> list[LangChainDocument]:
    """LangChain ``Document`` objects from rows, equal to what ``DatalabOCRLoader`` makes.

    Rows with ``error`` set are skipped (and logged).
    """
    from datalab_ocr.langchain import _to_document

    return [_to_document(record, source, extra or {}) for record, source in _records(rows)]
