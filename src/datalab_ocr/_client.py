"""The sync and async clients: thin drivers around the job flows in :mod:`._flow`.

Everything that does no I/O lives in :class:`_BaseClient`; the two clients differ only in how
they send a request and how they wait. The sync client never starts an event loop and the
async client never hides the sync one in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ._batch import (
    DEFAULT_CONCURRENCY,
    BatchError,
    BatchItem,
    BatchResult,
    ErrorPolicy,
    cached_ocr,
    check_policy,
    note_progress,
    prepare_all,
    progress_bar,
    report_failure,
)
from ._cache import ResultCache
from ._clock import Clock, SystemClock
from ._config import resolve_connection
from ._exceptions import DatalabError, InvalidInputError
from ._flow import (
    Endpoint,
    Flow,
    FlowSettings,
    Outcome,
    Send,
    Sleep,
    check_job,
    same_origin,
    submit_job,
    wait_for_job,
)
from ._inputs import FileInput, Upload, prepare_upload
from ._models import OCRResult
from ._options import OCRJob, OCROptions
from ._page_range import PageRange, parse_page_range
from ._policies import DEFAULT_TIMEOUT, PollPolicy, RetryPolicy
from ._ratelimit import RateLimiter

__all__ = ["AsyncDatalabClient", "DatalabClient"]

T = TypeVar("T")

try:
    __version__ = version("datalab-ocr")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

_USER_AGENT = f"datalab-ocr/{__version__} httpx/{httpx.__version__}"


class _BaseClient:
    """Configuration and request building shared by both clients; no I/O."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        *,
        local: bool = False,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        polling: PollPolicy | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
        rate_limit: RateLimiter | bool = True,
        cache: ResultCache | str | os.PathLike[str] | bool = True,
        _endpoint: Endpoint | None = None,
    ) -> None:
        self._connection = resolve_connection(api_key, base_url, local=local)
        self._cache = _resolve_cache(cache)
        if rate_limit is True:
            # The embedded server has no account to protect; everything else gets the
            # hosted API's budget unless told otherwise.
            limiter = None if local else RateLimiter()
        else:
            limiter = rate_limit or None
        self._timeout: httpx.Timeout | None = (
            timeout
            if isinstance(timeout, httpx.Timeout) or timeout is None
            else httpx.Timeout(timeout)
        )
        self._settings = FlowSettings(
            base_url=self._connection.base_url,
            retry=retry or RetryPolicy(),
            polling=polling or PollPolicy(),
            clock=clock or SystemClock(),
            rng=random.Random(seed),
            endpoint=_endpoint or Endpoint(),
            limiter=limiter,
        )

    @property
    def base_url(self) -> str:
        """The service this client talks to."""
        return str(self._connection.base_url)

    @property
    def cache(self) -> ResultCache | None:
        """The result cache and job ledger, or None when caching is off."""
        return self._cache

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy for single requests."""
        return self._settings.retry

    @property
    def polling(self) -> PollPolicy:
        """The polling policy and overall job deadline."""
        return self._settings.polling

    def __repr__(self) -> str:
        key = "set" if self._connection.api_key else "none"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key})"

    # Flows for the public methods, built from the caller's arguments.

    def _ocr_flow(
        self,
        file: FileInput,
        filename: str | None,
        max_pages: int | None,
        page_range: PageRange | None,
        skip_cache: bool,
        langs: str | Sequence[str] | None,
    ) -> Flow[OCRResult]:
        options = OCROptions.build(
            max_pages=max_pages, page_range=page_range, skip_cache=skip_cache, langs=langs
        )
        return cached_ocr(self._settings, self._cache, prepare_upload(file, filename), options)

    def _batch_plan(
        self,
        files: Iterable[FileInput],
        errors: str,
        max_pages: int | None,
        page_range: PageRange | None,
        skip_cache: bool,
        langs: str | Sequence[str] | None,
    ) -> tuple[ErrorPolicy, OCROptions, list[BatchItem], list[tuple[int, str, Upload]]]:
        """Check a batch before anything is uploaded: refused files and files to send."""
        policy = check_policy(errors)
        options = OCROptions.build(
            max_pages=max_pages, page_range=page_range, skip_cache=skip_cache, langs=langs
        )
        refused: list[BatchItem] = []
        todo: list[tuple[int, str, Upload]] = []
        for index, (name, upload) in enumerate(prepare_all(list(files))):
            if isinstance(upload, InvalidInputError):
                refused.append(BatchItem(index, name, error=upload))
            else:
                todo.append((index, name, upload))
        if policy == "raise" and refused:
            report_failure(refused[0], policy)
            raise BatchError(refused[0], [])
        return policy, options, refused, todo

    def _batch_flow(self, upload: Upload, options: OCROptions, hits: list[bool]) -> Flow[OCRResult]:
        return cached_ocr(self._settings, self._cache, upload, options, hits)

    def _submit_flow(
        self,
        file: FileInput,
        filename: str | None,
        max_pages: int | None,
        page_range: PageRange | None,
        skip_cache: bool,
        langs: str | Sequence[str] | None,
    ) -> Flow[OCRJob]:
        options = OCROptions.build(
            max_pages=max_pages, page_range=page_range, skip_cache=skip_cache, langs=langs
        )
        return submit_job(self._settings, prepare_upload(file, filename), options)

    def _job(
        self, job: OCRJob | str, page_range: PageRange | None, max_pages: int | None
    ) -> OCRJob:
        if isinstance(job, OCRJob):
            return job
        request_id = job.strip()
        if not request_id or "/" in request_id:
            raise ValueError(f"{job!r} is not a request id")
        return OCRJob(
            request_id=request_id,
            check_url=self._settings.url(request_id),
            page_range=parse_page_range(page_range) if page_range is not None else None,
            max_pages=max_pages,
        )

    def _wait_flow(
        self,
        job: OCRJob | str,
        page_range: PageRange | None,
        max_pages: int | None,
        timeout: float | None,
    ) -> Flow[OCRResult]:
        deadline = None
        if timeout is not None:
            deadline = self._settings.clock.monotonic() + timeout
        return wait_for_job(
            self._settings,
            self._job(job, page_range, max_pages),
            deadline=deadline,
            check_first=not isinstance(job, OCRJob),
        )

    def _check_flow(self, job: OCRJob | str) -> Flow[OCRResult]:
        return check_job(self._settings, self._job(job, None, None))

    # Turning a Send step into an httpx request.

    def _build_request(
        self, http: httpx.Client | httpx.AsyncClient, step: Send, files: contextlib.ExitStack
    ) -> httpx.Request:
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        url = httpx.URL(step.url)
        # Belt and braces: the flow only ever builds URLs on the base URL's origin, and the
        # key goes nowhere else even if that ever changed.
        if self._connection.api_key and same_origin(url, self._connection.base_url):
            headers["X-API-Key"] = self._connection.api_key
        extra: dict[str, Any] = {}
        if self._timeout is not None:
            extra["timeout"] = self._timeout
        if step.upload is not None:
            upload = step.upload
            stream = files.enter_context(upload.open())
            extra["files"] = {"file": (upload.filename, stream, upload.kind.mime_type)}
            extra["data"] = step.form
        return http.build_request(step.method, url, headers=headers, **extra)


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
        rate_limit: RateLimiter | bool = True,
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
        return self._run(self._ocr_flow(file, filename, max_pages, page_range, skip_cache, langs))

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
        return self._run(
            self._submit_flow(file, filename, max_pages, page_range, skip_cache, langs)
        )

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
    ) -> Iterator[BatchItem]:
        """OCR many files, up to ``concurrency`` at once, yielding each as it completes.

        Every file is checked before any is uploaded. Outcomes come in completion order as
        :class:`BatchItem` objects (``index`` is the file's position in ``files``); what
        happens to failures is the ``errors`` policy: ``"raise"`` (default) raises
        :class:`BatchError` at the first, ``"skip"`` logs and drops them, ``"collect"``
        yields them with ``error`` set. Runs on a thread pool; never starts an event loop.
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
        with progress_bar(len(refused) + len(todo), show_progress, "OCR") as bar:
            try:
                futures: list[Future[BatchItem]] = [
                    pool.submit(self._batch_one, index, name, upload, options, stop)
                    for index, name, upload in todo
                ]
                for item in refused:
                    note_progress(bar, item, counts)
                    if _settle(item, policy, completed):
                        yield item
                for future in as_completed(futures):
                    item = future.result()
                    note_progress(bar, item, counts)
                    if _settle(item, policy, completed):
                        yield item
            finally:
                # Abandoned (an error, a break, Ctrl-C): stop the workers between steps.
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
            result = self._run(self._batch_flow(upload, options, hits), stop)
        except DatalabError as error:
            return _failed(index, name, error)
        return BatchItem(index, name, result=result, from_cache=bool(hits))

    def _run(self, flow: Flow[T], stop: threading.Event | None = None) -> T:
        outcome: Outcome = None
        clock = self._settings.clock
        try:
            while True:
                if stop is not None and stop.is_set():
                    flow.close()
                    raise _BatchStoppedError
                step = flow.send(outcome)
                if isinstance(step, Sleep):
                    if stop is not None and isinstance(clock, SystemClock):
                        stop.wait(step.seconds)
                    else:
                        clock.sleep(step.seconds)
                    outcome = None
                    continue
                with contextlib.ExitStack() as files:
                    try:
                        outcome = self._http.send(self._build_request(self._http, step, files))
                    except httpx.TransportError as error:
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
        rate_limit: RateLimiter | bool = True,
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
        return await self._run(
            self._ocr_flow(file, filename, max_pages, page_range, skip_cache, langs)
        )

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
        return await self._run(
            self._submit_flow(file, filename, max_pages, page_range, skip_cache, langs)
        )

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
    ) -> AsyncIterator[BatchItem]:
        """OCR many files, up to ``concurrency`` at once, yielding each as it completes.

        The same contract as :meth:`DatalabClient.iter_batch`, on asyncio tasks.
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

        workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(todo)))]
        completed: list[BatchItem] = []
        counts = {"pages": 0, "failed": 0}
        with progress_bar(len(refused) + len(todo), show_progress, "OCR") as bar:
            try:
                for item in refused:
                    note_progress(bar, item, counts)
                    if _settle(item, policy, completed):
                        yield item
                for _ in todo:
                    outcome = await done.get()
                    if isinstance(outcome, BaseException):
                        raise outcome
                    note_progress(bar, outcome, counts)
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
            result = await self._run(self._batch_flow(upload, options, hits))
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
                    try:
                        request = self._build_request(self._http, step, files)
                        outcome = await self._http.send(request)
                    except httpx.TransportError as error:
                        outcome = error
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

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


_CACHE_OFF = {"0", "off", "false", "no", "none"}
CACHE_ENV = "DATALAB_OCR_CACHE"


def _resolve_cache(cache: ResultCache | str | os.PathLike[str] | bool) -> ResultCache | None:
    """The client's cache: on by default, off with ``cache=False`` or DATALAB_OCR_CACHE=off."""
    if isinstance(cache, ResultCache):
        return cache
    if cache is False:
        return None
    if cache is True:
        if os.environ.get(CACHE_ENV, "").strip().lower() in _CACHE_OFF:
            return None
        return ResultCache()
    return ResultCache(Path(cache))


def _settle(item: BatchItem, policy: ErrorPolicy, completed: list[BatchItem]) -> bool:
    """Apply the error policy to one outcome; True when it is to be handed to the caller."""
    if item.ok:
        completed.append(item)
        return True
    report_failure(item, policy)
    if policy == "raise":
        raise BatchError(item, completed) from item.error
    return policy == "collect"


def _failed(index: int, name: str, error: DatalabError) -> BatchItem:
    error.filename = error.filename or name
    return BatchItem(index, name, error=error)


class _BatchStoppedError(Exception):
    """Raised inside a batch worker when the batch was abandoned."""
