"""The synchronous client: a thread-safe driver of the job flows; never starts an event loop."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Generator, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from types import TracebackType

import httpx

from ._base_client import (
    T,
    _BaseClient,
    _BatchStoppedError,
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
from ._clock import Clock, SystemClock
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

__all__ = ["DatalabClient"]


class DatalabClient(_BaseClient):
    """A synchronous client of the Datalab OCR API.

    Settings come from the arguments, then the ``DATALAB_API_KEY`` and ``DATALAB_BASE_URL``
    environment variables, then the hosted service at ``https://www.datalab.to``.
    ``local=True`` talks to an embedded local server instead (no key needed). Pass
    ``http_client`` to bring your own ``httpx.Client`` (proxies, certificates, transports);
    the client then does not close it.

    Use it as a context manager, or call :meth:`close`.
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
        http_client: httpx.Client | None = None,
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
        self._http = http_client or httpx.Client(timeout=self._timeout or DEFAULT_TIMEOUT)

    def ocr(
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

        ``file`` is a path, the bytes of a file (with ``filename``), or a binary file object.
        ``page_range`` takes 0-based pages (``"0,2-4"`` or ``[0, 2, 3, 4]``) and overrides
        ``max_pages``. ``langs`` is deprecated and ignored by the service.
        """
        upload, options = self._prepare(file, filename, max_pages, page_range, skip_cache, langs)
        return self._run(self._ocr_flow(upload, options))

    def submit(
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
        return self._run(self._submit_flow(upload, options))

    def wait(
        self,
        job: OCRJob | str,
        *,
        page_range: PageRange | None = None,
        max_pages: int | None = None,
        timeout: float | None = None,
    ) -> OCRResult:
        """Wait for a submitted job and return its result.

        ``job`` is the handle from :meth:`submit` or a bare request id (to resume after a
        restart, within the service's one-hour retention; pass the ``page_range`` or
        ``max_pages`` it was submitted with so pages get their original indices).
        ``timeout`` overrides the polling policy's overall deadline.
        """
        return self._run(self._wait_flow(job, page_range, max_pages, timeout))

    def check(self, job: OCRJob | str) -> OCRResult:
        """Ask once how a job is doing; the answer's ``status`` may still be ``processing``."""
        return self._run(self._check_flow(job))

    def iter_batch(
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
    ) -> Generator[BatchItem, None, None]:
        """OCR many files, up to ``concurrency`` at once, yielding each as it completes.

        Every file is checked before any is uploaded. Outcomes come in completion order as
        :class:`BatchItem` objects (``index`` is the file's position in ``files``); what
        happens to failures is the ``errors`` policy: ``"raise"`` (default) raises
        :class:`BatchError` at the first, ``"skip"`` logs and drops them, ``"collect"``
        yields them with ``error`` set. Runs on a thread pool; never starts an event loop.

        To stop early, close the iterator (``with contextlib.closing(client.iter_batch(...))
        as items:``): a bare ``break`` leaves it running while something still refers to it.
        Jobs already submitted are recorded in the result cache and resumed by the next run.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        policy, options, refused, todo = self._batch_plan(
            files, errors, max_pages, page_range, skip_cache, langs
        )
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="datalab-ocr")
        completed: list[BatchItem] = []
        counts = {"pages": 0, "failed": 0}
        weights = page_weights(todo, options, show_progress)
        pages = sum(weights.values()) + len(refused) if weights else 0
        with progress_bar(len(refused) + len(todo), show_progress, "OCR", pages) as bar:
            try:
                # Refused files first, before any upload starts: a caller that stops at the
                # first of them has sent nothing.
                for item in refused:
                    note_progress(bar, item, counts, weights)
                    if _settle(item, policy, completed):
                        yield item
                futures: list[Future[BatchItem]] = [
                    pool.submit(self._batch_one, index, name, upload, options, stop)
                    for index, name, upload in todo
                ]
                for future in as_completed(futures):
                    item = future.result()
                    note_progress(bar, item, counts, weights)
                    if _settle(item, policy, completed):
                        yield item
            finally:
                # Abandoned (an error, close(), Ctrl-C): stop the workers between steps.
                # Submitted jobs stay in the ledger, so the next run re-polls them.
                stop.set()
                pool.shutdown(wait=False, cancel_futures=True)

    def ocr_batch(
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
        items = self.iter_batch(
            files,
            concurrency=concurrency,
            errors=errors,
            show_progress=show_progress,
            max_pages=max_pages,
            page_range=page_range,
            skip_cache=skip_cache,
            langs=langs,
        )
        return BatchResult(sorted(items, key=lambda item: item.index))

    def _batch_one(
        self, index: int, name: str, upload: Upload, options: OCROptions, stop: threading.Event
    ) -> BatchItem:
        hits: list[bool] = []
        try:
            result = self._run(self._ocr_flow(upload, options, hits), stop)
        except DatalabError as error:
            return _failed(index, name, error)
        return BatchItem(index, name, result=result, from_cache=bool(hits))

    def _run(self, flow: Flow[T], stop: threading.Event | None = None) -> T:
        outcome: Outcome = None
        clock = self._settings.clock
        try:
            while True:
                # The flow sees every answer before the batch may stop: a submit's answer is
                # where the job gets recorded for resuming, and it was paid for.
                step = flow.send(outcome)
                if stop is not None and stop.is_set():
                    flow.close()
                    raise _BatchStoppedError
                if isinstance(step, Sleep):
                    if stop is not None and isinstance(clock, SystemClock):
                        stop.wait(step.seconds)
                    else:
                        clock.sleep(step.seconds)
                    outcome = None
                    continue
                with contextlib.ExitStack() as files:
                    request = self._build_request(self._http, step, files)
                    try:
                        # Never follow a redirect: it could carry the key to another origin.
                        outcome = self._http.send(request, follow_redirects=False)
                    except httpx.RequestError as error:
                        if stop is not None and stop.is_set():
                            # The batch was abandoned and its connections closed under this
                            # request: nothing was answered, and there is nothing to retry.
                            flow.close()
                            raise _BatchStoppedError from None
                        outcome = error
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the connection pool, unless it was passed in as ``http_client``."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> DatalabClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
