"""Hosted API mode: each worker drives the ordinary sync client over its share of the files.

A worker is a Ray Data actor holding one :class:`~datalab_ocr.DatalabClient` for its life:
the same job flow, retries, adaptive polling and result cache as anywhere else, with the
cluster's limiter as its ``rate_limit``. The API key never travels in a task or an actor
argument: the client reads ``DATALAB_API_KEY`` from the worker's environment, which
``read_ocr`` sets through the runtime environment when the key is given to it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyarrow as pa

from datalab_ocr._batch import ErrorPolicy
from datalab_ocr._client import DatalabClient
from datalab_ocr._documents import LoadOptions
from datalab_ocr._exceptions import DatalabError
from datalab_ocr._inputs import Upload, prepare_upload
from datalab_ocr._policies import DEFAULT_TIMEOUT, PollPolicy, RetryPolicy

from ._files import LocalCopy, ResultStore, local_copy
from ._limiter import ClusterRateLimiter
from ._report import TallyClient
from ._rows import ROW_SCHEMA, error_row, page_rows

__all__ = ["HostedOCR", "HostedSettings"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostedSettings:
    """How each worker builds its client; holds no API key, by design."""

    base_url: str | None = None
    timeout: float | None = None
    retry: RetryPolicy | None = None
    polling: PollPolicy | None = None
    limiter_name: str | None = None
    cache: bool | str = True
    threads: int = 16
    options: LoadOptions = field(default_factory=LoadOptions)
    errors: ErrorPolicy = "raise"
    filesystem: Any = None
    store: ResultStore | None = None
    progress: str | None = None

    def result_key(self, sha256: str) -> str:
        """Where a file's rows are stored: its content, the service and the pages asked for."""
        selection = self.options.selection().replace(",", "_").replace(":", "")
        service = hashlib.sha256(str(self.base_url).encode()).hexdigest()[:12]
        return f"{sha256}-hosted-{service}-{selection}"


class HostedOCR:
    """A Ray Data callable class: rows of files (``path``, optionally ``bytes``) in, page rows
    out. Use it through :func:`datalab_ocr.ray.ocr_files` or ``map_batches`` directly."""

    def __init__(self, settings: HostedSettings) -> None:
        self._settings = settings
        self._requests = 0
        self._rate_limited = 0
        # The batch sends from a pool of threads; the counters are shared by them.
        self._count_lock = threading.Lock()
        http = httpx.Client(
            timeout=settings.timeout or DEFAULT_TIMEOUT,
            event_hooks={"response": [self._count]},
        )
        limiter = (
            ClusterRateLimiter(settings.limiter_name)
            if settings.limiter_name is not None
            else False
        )
        self._client = DatalabClient(
            None,
            settings.base_url,
            retry=settings.retry,
            polling=settings.polling,
            rate_limit=limiter,
            cache=settings.cache,
            http_client=http,
        )
        self._tally = TallyClient(settings.progress)

    def _count(self, response: httpx.Response) -> None:
        with self._count_lock:
            self._requests += 1
            if response.status_code == 429:
                self._rate_limited += 1

    def __call__(self, batch: pa.Table) -> pa.Table:
        """OCR the batch's files, up to ``threads`` at once; one row per page."""
        self._tally.start()
        paths = batch.column("path").to_pylist()
        datas = batch.column("bytes").to_pylist() if "bytes" in batch.column_names else None
        sent_before, limited_before = self._requests, self._rate_limited
        rows: list[dict[str, Any]] = []
        counts = {"files": 0, "pages": 0, "failures": 0, "skipped": 0}
        copies: list[LocalCopy] = []
        try:
            todo: list[tuple[str, Upload, str]] = []
            for position, path in enumerate(paths):
                data = None if datas is None else datas[position]
                found = self._open(path, data, copies, rows, counts)
                if found is not None:
                    todo.append((path, *found))
            self._run(todo, rows, counts)
        finally:
            for copy in copies:
                copy.discard()
        counts["requests"] = self._requests - sent_before
        counts["rate_limited"] = self._rate_limited - limited_before
        self._tally.add(**counts)
        return pa.Table.from_pylist(rows, schema=ROW_SCHEMA)

    def _open(
        self,
        path: str,
        data: bytes | None,
        copies: list[LocalCopy],
        rows: list[dict[str, Any]],
        counts: dict[str, int],
    ) -> tuple[Upload, str] | None:
        """The file's upload and hash, or None when it is done already or refused."""
        settings = self._settings
        try:
            copy = local_copy(path, settings.filesystem, data)
            copies.append(copy)
            if settings.store is not None:
                stored = settings.store.get(settings.result_key(copy.sha256))
                if stored is not None:
                    rows.extend(stored)
                    counts["files"] += 1
                    counts["skipped"] += 1
                    counts["pages"] += len(stored)
                    return None
            return prepare_upload(copy.path, _name(path)), copy.sha256
        except (OSError, DatalabError) as error:
            self._failed(path, error, rows, counts)
            return None

    def _run(
        self,
        todo: Sequence[tuple[str, Upload, str]],
        rows: list[dict[str, Any]],
        counts: dict[str, int],
    ) -> None:
        if not todo:
            return
        settings = self._settings
        options = settings.options
        items = self._client.iter_batch(
            [upload for _, upload, _ in todo],
            concurrency=settings.threads,
            max_pages=options.max_pages,
            page_range=options.page_range,
            skip_cache=options.skip_cache,
            errors="collect",
        )
        try:
            for item in items:
                path, _, sha256 = todo[item.index]
                if item.result is None:
                    assert item.error is not None
                    self._failed(path, item.error, rows, counts)
                    continue
                try:
                    done = page_rows(item.result, path, sha256, options)
                except DatalabError as error:
                    self._failed(path, error, rows, counts)
                    continue
                if settings.store is not None:
                    settings.store.put(settings.result_key(sha256), done)
                rows.extend(done)
                counts["files"] += 1
                counts["pages"] += len(done)
        finally:
            items.close()

    def _failed(
        self, path: str, error: Exception, rows: list[dict[str, Any]], counts: dict[str, int]
    ) -> None:
        if isinstance(error, DatalabError):
            error.filename = path
        if self._settings.errors == "raise":
            raise error
        logger.warning("skipped %s: %s", path, error)
        counts["failures"] += 1
        if self._settings.errors == "collect":
            rows.append(error_row(path, f"{type(error).__name__}: {error}"))

    def __repr__(self) -> str:
        return f"HostedOCR(base_url={self._client.base_url!r})"


def _name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1] or path
