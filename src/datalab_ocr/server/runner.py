"""Runs accepted jobs: the cache, the worker pool, simulated latency, and completion.

Each job is an asyncio task on the server's event loop; the CPU work happens in the worker
pool. A job always completes, successfully or with ``success: false`` and an error message:
nothing raised while processing a document escapes to the client as a 500 or a hung job.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datalab_ocr._models import OCRResult
from datalab_ocr.server.config import ServerConfig
from datalab_ocr.server.engine import DocumentError, PagesResult, prepare_document, process_pages
from datalab_ocr.server.formats import PDF, office_suffix
from datalab_ocr.server.jobs import CachedPages, Job, JobStore
from datalab_ocr.server.limits import Stats
from datalab_ocr.server.options import JobOptions, pages_past_end, select_pages
from datalab_ocr.server.workers import WorkerCrashedError, WorkerPool

__all__ = ["JobRunner", "StoredUpload", "store_upload"]

logger = logging.getLogger(__name__)

_COPY_CHUNK = 1024 * 1024
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


@dataclass(frozen=True)
class StoredUpload:
    """An upload copied to a private folder, with what the server needs to know about it."""

    folder: Path
    path: Path
    size: int
    sha256: str
    head: bytes
    filename: str | None
    content_type: str | None

    def discard(self) -> None:
        """Delete the folder and everything in it (the upload, any converted PDF)."""
        shutil.rmtree(self.folder, ignore_errors=True)


async def store_upload(upload: Any, *, limit: int) -> StoredUpload:
    """Copy a Starlette ``UploadFile`` to a private temporary folder, hashing it on the way.

    Stops copying once ``limit`` bytes are exceeded; the caller checks ``size`` for 413.
    """
    folder = Path(tempfile.mkdtemp(prefix="datalab-ocr-job-"))
    path = folder / "upload"
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with path.open("wb") as out:
            while chunk := await upload.read(_COPY_CHUNK):
                size += len(chunk)
                if size > limit:
                    break
                if len(head) < 2048:
                    head += chunk[: 2048 - len(head)]
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return StoredUpload(
        folder=folder,
        path=path,
        size=size,
        sha256=digest.hexdigest(),
        head=head,
        filename=upload.filename,
        content_type=upload.content_type,
    )


def _describe(exc: BaseException) -> str:
    detail = " ".join(str(exc).split())
    if len(detail) > 200:
        detail = detail[:199] + "…"
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _synthetic_page_count(path: Path, kind: str) -> int:
    # engine="none" skips the workers, so it cannot ask PDFium; counting page objects in the
    # raw bytes is close enough for load tests (compressed object streams undercount to 1).
    if kind != PDF:
        return 1
    return max(1, len(_PDF_PAGE.findall(path.read_bytes())))


def _synthetic_page(index: int, scale: float) -> dict[str, Any]:
    width, height = 612 * scale, 792 * scale
    x0, y0, x1, y1 = 72 * scale, 72 * scale, 300 * scale, 86 * scale
    return {
        "page": index + 1,
        "image_bbox": [0.0, 0.0, width, height],
        "text_lines": [
            {
                "text": f"Synthetic page {index + 1}",
                "confidence": 1.0,
                "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
                "bbox": [x0, y0, x1, y1],
            }
        ],
    }


class JobRunner:
    """Accepts jobs and runs them to completion on the running event loop."""

    def __init__(self, config: ServerConfig, store: JobStore, stats: Stats) -> None:
        self.config = config
        self.store = store
        self.stats = stats
        self.pool = WorkerPool(config.workers)
        self.active = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def full(self) -> bool:
        """Whether the queue is full: no new job may be accepted now."""
        return self.active >= self.config.capacity

    def retry_after(self) -> float:
        """A guess of when a queue slot frees up, for ``Retry-After``."""
        return max(1.0, self.config.latency)

    def submit(self, upload: StoredUpload, kind: str, options: JobOptions) -> Job:
        """Create a job for ``upload`` (now owned by the job) and start running it."""
        job = self.store.create(time.monotonic())
        self.active += 1
        task = asyncio.create_task(self._run(job, upload, kind, options))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def _cache_key(self, upload: StoredUpload, options: JobOptions) -> str:
        return f"{upload.sha256};{self.config.engine};{options.cache_key_part()}"

    async def _run(self, job: Job, upload: StoredUpload, kind: str, options: JobOptions) -> None:
        try:
            await self._run_to_completion(job, upload, kind, options)
        finally:
            self.active -= 1

    async def _run_to_completion(
        self, job: Job, upload: StoredUpload, kind: str, options: JobOptions
    ) -> None:
        started = time.monotonic()
        try:
            result = await self._result(upload, kind, options)
        except (DocumentError, WorkerCrashedError) as exc:
            logger.info("job %s failed: %s", job.request_id, exc)
            result = OCRResult(status="complete", success=False, error=str(exc), page_count=0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = f"Internal error while processing the document: {_describe(exc)}"
            # One line at the default level: the embedded server shares the user's terminal,
            # where a traceback of a failure the job already reports helps nobody.
            logger.error("job %s failed: %s", job.request_id, message)
            logger.debug("traceback of job %s", job.request_id, exc_info=exc)
            result = OCRResult(status="complete", success=False, error=message, page_count=0)
        finally:
            upload.discard()
        pages = result.page_count or 0
        hold = self.config.latency + self.config.page_latency * pages
        remaining = started + hold - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)
        finished = time.monotonic()
        self.store.complete(job, result, finished)
        self.stats.last_completed = finished
        if result.success:
            self.stats.jobs_completed += 1
            self.stats.pages += pages
        else:
            self.stats.jobs_failed += 1

    async def _result(self, upload: StoredUpload, kind: str, options: JobOptions) -> OCRResult:
        key = self._cache_key(upload, options)
        cached = None if options.skip_cache else self.store.cached(key)
        if cached is not None:
            self.stats.cache_hits += 1
        else:
            cached = await self._process(upload, kind, options)
            self.store.remember(key, cached)
        return OCRResult(
            status="complete",
            success=True,
            error=None,
            pages=cached.pages,  # type: ignore[arg-type]  # validated into OCRPage models
            page_count=len(cached.pages),
            versions=dict(cached.versions),
            total_cost=0.0,
        )

    async def _process(self, upload: StoredUpload, kind: str, options: JobOptions) -> CachedPages:
        config = self.config
        if config.engine == "none":
            count = await asyncio.to_thread(_synthetic_page_count, upload.path, kind)
            indices = self._selected(options, count)
            synthetic = [_synthetic_page(index, config.render_scale) for index in indices]
            return CachedPages(pages=synthetic, versions={"engine": "none"})

        document = await self.pool.run(
            prepare_document,
            str(upload.path),
            kind,
            suffix=office_suffix(upload.filename, upload.content_type),
            max_image_pixels=config.max_image_pixels,
            office_timeout=config.office_timeout,
        )
        indices = self._selected(options, document.page_count)
        # Chunks of pages let every worker help with one long document.
        size = max(1, min(8, math.ceil(len(indices) / config.workers)))
        chunks = [indices[i : i + size] for i in range(0, len(indices), size)]
        outcomes = await asyncio.gather(
            *(
                self.pool.run(
                    process_pages,
                    document,
                    chunk,
                    engine=config.engine,
                    render_scale=config.render_scale,
                    max_image_pixels=config.max_image_pixels,
                    max_render_pixels=config.max_render_pixels,
                )
                for chunk in chunks
            ),
            return_exceptions=True,
        )
        pages: list[dict[str, Any]] = []
        versions: dict[str, str] = {}
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            assert isinstance(outcome, PagesResult)
            pages.extend(outcome.pages)
            versions.update(outcome.versions)
        return CachedPages(pages=pages, versions=versions)

    @staticmethod
    def _selected(options: JobOptions, page_count: int) -> list[int]:
        indices = select_pages(options, page_count)
        last = "0" if page_count == 1 else f"0-{page_count - 1}"
        if not indices:
            raise DocumentError(
                f"The requested pages select no page of this {page_count}-page document "
                f"(page_range is 0-based: pages {last})"
            )
        past = pages_past_end(options, page_count)
        if past:
            logger.warning(
                "page_range asks for %d page%s past the end of a %d-page document (0-based: "
                "%s); %s dropped",
                len(past),
                "" if len(past) == 1 else "s",
                page_count,
                last,
                "it is" if len(past) == 1 else "they are",
            )
        return indices

    async def aclose(self) -> None:
        """Cancel unfinished jobs and stop the worker processes."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Called directly, not through asyncio.to_thread: at interpreter exit (the embedded
        # server's atexit stop) the default thread pool refuses new work. Blocking the loop
        # is harmless here, the server is stopping.
        self.pool.shutdown()
