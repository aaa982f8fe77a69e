"""The asyncio client: drives the job flows on httpx.AsyncClient; never hides the sync one in a
thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import AsyncGenerator, Iterable, Sequence
from types import TracebackType

import httpx

from ._base_client import (
    T,
    _BaseClient,
    _failed,
    _settle,
)
from ._batch import (
    DEFAULT_CONCURRENCY,
    BatchItem,
    BatchResult,
    ErrorPolicy,
    note_progress,
    page_weights,
    progress_bar,
)
from ._cache import ResultCache
from ._clock import Clock
from ._exceptions import DatalabError
from ._flow import (
    Flow,
    Outcome,
    Sleep,
)
from ._inputs import FileInput, Upload
from ._models import OCRResult
from ._options import OCRJob, OCROptions
from ._page_range import PageRange
from ._policies import DEFAULT_TIMEOUT, PollPolicy, RetryPolicy
from ._ratelimit import Limiter

__all__ = ["AsyncDatalabClient"]


class AsyncDatalabClient(_BaseClient):
    """An asyncio client of the Datalab OCR API; the same settings as :class:`DatalabClient`.

    Pass ``http_client`` to bring your own ``httpx.AsyncClient``. Use it as an async context
    manager, or call :meth:`aclose`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        *,
        local: bool = False,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        polling: PollPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
        rate_limit: Limiter | bool = True,
        cache: ResultCache | str | os.PathLike[str] | bool = True,
    ) -> None:
        super().__init__(
            api_key,
            base_url,
            local=local,
            timeout=timeout,
            retry=retry,
            polling=polling,
            clock=clock,
            seed=seed,
            rate_limit=rate_limit,
            cache=cache,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=self._timeout or DEFAULT_TIMEOUT)

    async def ocr(
        self,
        file: FileInput,
        *,
        filename: str | None = None,
        max_pages: int | None = None,
        page_range: PageRange | None = None,
        skip_cache: bool = False,
        langs: str | Sequence[str] | None = None,
    ) -> OCRResult:
        """OCR one file: submit it, wait for the job, and return the complete result.

        The same arguments as :meth:`DatalabClient.ocr`.
        """
        upload, options = self._prepare(file, filename, max_pages, page_range, skip_cache, langs)
        await _scan(upload)
        return await self._run(self._ocr_flow(upload, options))

    async def submit(
        self,
        file: FileInput,
        *,
        filename: str | None = None,
        max_pages: int | None = None,
        page_range: PageRange | None = None,
        skip_cache: bool = False,
        langs: str | Sequence[str] | None = None,
    ) -> OCRJob:
        """Upload one file and return the job handle without waiting for the result."""
        upload, options = self._prepare(file, filename, max_pages, page_range, skip_cache, langs)
        await _scan(upload)
        return await self._run(self._submit_flow(upload, options))

    async def wait(
        self,
        job: OCRJob | str,
        *,
        page_range: PageRange | None = None,
        max_pages: int | None = None,
        timeout: float | None = None,
    ) -> OCRResult:
        """Wait for a submitted job and return its result; see :meth:`DatalabClient.wait`."""
        return await self._run(self._wait_flow(job, page_range, max_pages, timeout))

    async def check(self, job: OCRJob | str) -> OCRResult:
        """Ask once how a job is doing; the answer's ``status`` may still be ``processing``."""
        return await self._run(self._check_flow(job))

    async def iter_batch(
        self,
        files: Iterable[FileInput],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        errors: ErrorPolicy = "raise",
        show_progress: bool = False,
        max_pages: int | None = None,
        page_range: PageRange | None = None,
        skip_cache: bool = False,
        langs: str | Sequence[str] | None = None,
    ) -> AsyncGenerator[BatchItem, None]:
        """OCR many files, up to ``concurrency`` at once, yielding each as it completes.

        The same contract as :meth:`DatalabClient.iter_batch`, on asyncio tasks; to stop
        early, close it (``async with contextlib.aclosing(client.iter_batch(...)) as items:``).
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        policy, options, refused, todo = self._batch_plan(
            files, errors, max_pages, page_range, skip_cache, langs
        )
        waiting = deque(todo)
        done: asyncio.Queue[BatchItem | BaseException] = asyncio.Queue()

        async def worker() -> None:
            while waiting:
                index, name, upload = waiting.popleft()
                try:
                    await done.put(await self._batch_one(index, name, upload, options))
                except Exception as error:  # a bug, not a file's failure: hand it over
                    await done.put(error)

        workers: list[asyncio.Task[None]] = []
        completed: list[BatchItem] = []
        counts = {"pages": 0, "failed": 0}
        weights = await asyncio.to_thread(page_weights, todo, options, show_progress)
        pages = sum(weights.values()) + len(refused) if weights else 0
        with progress_bar(len(refused) + len(todo), show_progress, "OCR", pages) as bar:
            try:
                # Refused files first, before any upload starts: a caller that stops at the
                # first of them has sent nothing.
                for item in refused:
                    note_progress(bar, item, counts, weights)
                    if _settle(item, policy, completed):
                        yield item
                workers.extend(
                    asyncio.create_task(worker()) for _ in range(min(concurrency, len(todo)))
                )
                for _ in todo:
                    outcome = await done.get()
                    if isinstance(outcome, BaseException):
                        raise outcome
                    note_progress(bar, outcome, counts, weights)
                    if _settle(outcome, policy, completed):
                        yield outcome
            finally:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)

    async def ocr_batch(
        self,
        files: Iterable[FileInput],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        errors: ErrorPolicy = "raise",
        show_progress: bool = False,
        max_pages: int | None = None,
        page_range: PageRange | None = None,
        skip_cache: bool = False,
        langs: str | Sequence[str] | None = None,
    ) -> BatchResult:
        """OCR many files and return every outcome, in input order; see :meth:`iter_batch`."""
        items = [
            item
            async for item in self.iter_batch(
                files,
                concurrency=concurrency,
                errors=errors,
                show_progress=show_progress,
                max_pages=max_pages,
                page_range=page_range,
                skip_cache=skip_cache,
                langs=langs,
            )
        ]
        return BatchResult(sorted(items, key=lambda item: item.index))

    async def _batch_one(
        self, index: int, name: str, upload: Upload, options: OCROptions
    ) -> BatchItem:
        hits: list[bool] = []
        try:
            await _scan(upload)
            result = await self._run(self._ocr_flow(upload, options, hits))
        except DatalabError as error:
            return _failed(index, name, error)
        return BatchItem(index, name, result=result, from_cache=bool(hits))

    async def _run(self, flow: Flow[T]) -> T:
        outcome: Outcome = None
        try:
            while True:
                step = flow.send(outcome)
                if isinstance(step, Sleep):
                    await self._settings.clock.asleep(step.seconds)
                    outcome = None
                    continue
                with contextlib.ExitStack() as files:
                    request = self._build_request(self._http, step, files)
                    if step.action == "submit":
                        outcome = await self._send_submit(flow, request)
                    else:
                        outcome = await self._send(request)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _send(self, request: httpx.Request) -> Outcome:
        try:
            # Never follow a redirect: it could carry the key to another origin.
            return await self._http.send(request, follow_redirects=False)
        except httpx.RequestError as error:
            return error

    async def _send_submit(self, flow: Flow[T], request: httpx.Request) -> Outcome:
        """Send a submit so that cancelling the task cannot lose a job that was started.

        A started job is paid for; its answer is where it gets recorded for resuming. So the
        send runs shielded: on cancellation it is allowed to finish (within its HTTP
        timeouts), its answer goes to the flow, and then the cancellation goes on.
        """
        sending = asyncio.ensure_future(self._send(request))
        try:
            return await asyncio.shield(sending)
        except asyncio.CancelledError:
            outcome = await sending
            with contextlib.suppress(Exception):
                flow.send(outcome)
            flow.close()
            raise

    async def aclose(self) -> None:
        """Close the connection pool, unless it was passed in as ``http_client``."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncDatalabClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _scan(upload: Upload) -> None:
    """Hash the file (and count a PDF's pages) in a worker thread, off the event loop."""
    await asyncio.to_thread(upload.scan)
