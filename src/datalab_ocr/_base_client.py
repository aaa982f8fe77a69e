"""What the sync and async clients share: configuration, flows and requests, no I/O.

The two clients (:mod:`._client`, :mod:`._async_client`) are thin drivers around the job flows
in :mod:`._flow`; they differ only in how they send a request and how they wait.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ._batch import (
    BatchError,
    BatchItem,
    ErrorPolicy,
    cached_ocr,
    check_policy,
    prepare_all,
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
    Send,
    check_job,
    same_origin,
    submit_job,
    wait_for_job,
)
from ._inputs import FileInput, Upload, prepare_upload
from ._models import OCRResult
from ._options import OCRJob, OCROptions
from ._page_range import PageRange, parse_page_range
from ._policies import PollPolicy, RetryPolicy
from ._ratelimit import Limiter, RateLimiter

__all__ = ["CACHE_ENV", "T", "__version__"]

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
        rate_limit: Limiter | bool = True,
        cache: ResultCache | str | os.PathLike[str] | bool = True,
        _endpoint: Endpoint | None = None,
    ) -> None:
        self._connection = resolve_connection(api_key, base_url, local=local)
        self._cache = _resolve_cache(cache)
        limiter: Limiter | None
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

    def _prepare(
        self,
        file: FileInput,
        filename: str | None,
        max_pages: int | None,
        page_range: PageRange | None,
        skip_cache: bool,
        langs: str | Sequence[str] | None,
    ) -> tuple[Upload, OCROptions]:
        """Check one file and its options before anything is sent."""
        options = OCROptions.build(
            max_pages=max_pages, page_range=page_range, skip_cache=skip_cache, langs=langs
        )
        return prepare_upload(file, filename), options

    def _ocr_flow(
        self, upload: Upload, options: OCROptions, hits: list[bool] | None = None
    ) -> Flow[OCRResult]:
        return cached_ocr(self._settings, self._cache, upload, options, hits)

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

    def _submit_flow(self, upload: Upload, options: OCROptions) -> Flow[OCRJob]:
        return submit_job(self._settings, upload, options)

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
        if step.read_timeout is not None:
            # A long poll: the answer may take the whole wait, so read for longer than that.
            base = self._timeout or http.timeout
            read = max(base.read or 0.0, step.read_timeout)
            extra["timeout"] = httpx.Timeout(
                connect=base.connect, read=read, write=base.write, pool=base.pool
            )
        if step.upload is not None:
            upload = step.upload
            stream = files.enter_context(upload.open())
            extra["files"] = {"file": (upload.filename, stream, upload.kind.mime_type)}
            extra["data"] = step.form
        return http.build_request(step.method, url, headers=headers, **extra)


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
