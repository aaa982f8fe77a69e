"""Distributed OCR on Ray Data: one row per page, for corpora of millions of pages.

``pip install 'datalab-ocr[ray]'``. Two modes:

* hosted API (the default): every worker drives the ordinary sync client, and one named
  actor keeps the API key's rate limit for the whole cluster
  (:class:`ClusterRateLimiter`), so no node bounces off 429s;
* ``local=True``: the local server's engine runs in an actor pool, no HTTP, with long PDFs
  split into chunks of pages that spread over the cluster.

::

    import ray
    from datalab_ocr.ray import OCRProgress, read_ocr, to_llama_index_documents

    ray.init()                                   # or ray.init(address="ray://head:10001")
    progress = OCRProgress()
    pages = read_ocr("s3://bucket/scans/", output="s3://bucket/ocr/", progress=progress)
    pages.write_parquet("s3://bucket/pages/")
    print(progress.report())

``import datalab_ocr`` never imports Ray; this module needs the ``ray`` extra.
"""

from __future__ import annotations

from ._files import ResultStore, list_files
from ._hosted import HostedOCR, HostedSettings
from ._limiter import DEFAULT_LIMITER_NAME, ClusterRateLimiter, cluster_rate_limit
from ._local import LocalSettings, PageEngine, SplitDocuments
from ._read import ocr_files, read_ocr
from ._report import OCRProgress, OCRReport
from ._rows import ROW_SCHEMA, to_langchain_documents, to_llama_index_documents

__all__ = [
    "DEFAULT_LIMITER_NAME",
    "ROW_SCHEMA",
    "ClusterRateLimiter",
    "HostedOCR",
    "HostedSettings",
    "LocalSettings",
    "OCRProgress",
    "OCRReport",
    "PageEngine",
    "ResultStore",
    "SplitDocuments",
    "cluster_rate_limit",
    "list_files",
    "ocr_files",
    "read_ocr",
    "to_langchain_documents",
    "to_llama_index_documents",
]
