"""Batches: many files through one client, nothing lost and nothing paid twice.

The per-file work is one more flow, :func:`cached_ocr`: answer from the result cache when the
same content was OCRed with the same options before; re-poll a job that an interrupted run
had submitted; otherwise submit, recording the job before waiting so the next run can resume
it. The clients run many of these at once (threads for the sync client, tasks for the async
one) and hand each file's outcome over as soon as it is known, in completion order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from tqdm.auto import tqdm

from ._cache import ResultCache
from ._exceptions import DatalabError, InvalidInputError, JobFailedError, NotFoundError
from ._flow import (
    Flow,
    FlowSettings,
    Sleep,
    expected_pages,
    learn_server,
    run_ocr,
    submit_job,
    wait_for_job,
)
from ._inputs import FileInput, Upload, prepare_upload
from ._models import OCRResult
from ._options import OCROptions
from ._progress import logging_above_bars
from ._server_info import ServerInfo

__all__ = [
    "DEFAULT_CONCURRENCY",
    "BatchError",
    "BatchItem",
    "BatchResult",
    "ErrorPolicy",
    "cached_ocr",
]

logger = logging.getLogger("datalab_ocr")

DEFAULT_CONCURRENCY = 16
"""Files in flight at once. Under the hosted limit of 200 requests a minute, about two
requests per job and jobs of several seconds, a dozen or so in flight keep the budget busy."""

ErrorPolicy = Literal["raise", "skip", "collect"]
"""What a batch does with a file that fails: ``"raise"`` stops at the first failure (the
default: never silent), ``"skip"`` logs it and goes on, ``"collect"`` hands it over with the
successes, as a :class:`BatchItem` whose ``error`` is set."""

_POLICIES = ("raise", "skip", "collect")


@dataclass(frozen=True)
class BatchItem:
    """One file's outcome: ``result`` on success, ``error`` on failure.

    ``index`` is the file's position in the input; ``source`` names it (the path as given, or
    the file name); ``request_id`` is the job's, when one was submitted.
    """

    index: int
    source: str
    result: OCRResult | None = None
    error: DatalabError | None = None
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        """Whether the file was OCRed."""
        return self.error is None

    @property
    def request_id(self) -> str | None:
        """The request id of the file's job, if it got that far."""
        if self.result is not None:
            return self.result.request_id
        return self.error.request_id if self.error is not None else None


@dataclass
class BatchResult:
    """Every outcome of a batch, in input order."""

    items: list[BatchItem] = field(default_factory=list)

    @property
    def results(self) -> list[OCRResult]:
        """The results of the files that succeeded, in input order."""
        return [item.result for item in self.items if item.result is not None]

    @property
    def failures(self) -> list[BatchItem]:
        """The files that failed, each with its error (file name and request id inside)."""
        return [item for item in self.items if item.error is not None]


class BatchError(DatalabError):
    """A batch stopped at its first failure (``errors="raise"``).

    ``completed`` holds every file that succeeded before the stop, so nothing already paid
    for is lost; the failure itself is ``__cause__``.
    """

    def __init__(self, failure: BatchItem, completed: Sequence[BatchItem]) -> None:
        error = failure.error
        assert error is not None
        super().__init__(
            f"the batch stopped at {failure.source}: {error}; {len(completed)} files had "
            f"succeeded (see .completed); pass errors='collect' to go on past failures",
            filename=error.filename or failure.source,
            request_id=error.request_id,
            check_url=error.check_url,
        )
        self.failure = failure
        self.completed = list(completed)


def check_policy(errors: str) -> ErrorPolicy:
    """``errors`` as an :data:`ErrorPolicy`, or a ValueError naming the choices."""
    if errors not in _POLICIES:
        raise ValueError(f"errors must be one of {', '.join(map(repr, _POLICIES))}, not {errors!r}")
    return errors  # type: ignore[return-value]


def prepare_all(files: Sequence[FileInput]) -> list[tuple[str, Upload | InvalidInputError]]:
    """Validate every file before any is uploaded: (name, upload or the reason it is refused)."""
    prepared: list[tuple[str, Upload | InvalidInputError]] = []
    for file in files:
        name = _name_of(file)
        try:
            upload = prepare_upload(file)
        except InvalidInputError as error:
            prepared.append((error.filename or name, error))
        else:
            prepared.append((upload.display_name, upload))
    return prepared


def _name_of(file: object) -> str:
    if isinstance(file, (bytes, bytearray, memoryview)):
        return f"<{len(file)} bytes>"
    name = getattr(file, "name", file)
    return str(name)


def cache_key(
    settings: FlowSettings, upload: Upload, options: OCROptions, server_id: str | None = None
) -> str:
    """The cache key of a file's OCR: its content, the options that change the result, the
    service (a local server's identity, else the base URL) and the endpoint."""
    fields = options.form_fields()
    fields.pop("skip_cache", None)
    return ResultCache.key(
        content_sha256=upload.sha256(),
        options=fields,
        base_url=str(settings.base_url),
        endpoint=settings.endpoint.path,
        server_id=server_id,
    )


def cached_ocr(
    settings: FlowSettings,
    cache: ResultCache | None,
    upload: Upload,
    options: OCROptions,
    hits: list[bool] | None = None,
) -> Flow[OCRResult]:
    """OCR one file, through the result cache and the job ledger when there is a cache.

    ``skip_cache=True`` skips the lookup (the fresh result still replaces the stored one).
    ``hits``, when given, gets True appended for an answer from the cache.
    """
    if cache is None:
        return (yield from run_ocr(settings, upload, options))
    server = yield from learn_server(settings)
    if server.server_id and server.instance and settings.server.claim_sweep():
        forgotten = cache.forget_jobs_of_stopped_servers(server.server_id, server.instance)
        if forgotten:
            logger.info("forgot %d recorded jobs of local servers that have stopped", forgotten)
    key = cache_key(settings, upload, options, server.server_id)
    # The same content with the same options already in flight (a file listed twice, or
    # copied under another name): wait for it and take its result from the cache.
    while not _IN_FLIGHT.claim(key):
        yield Sleep(_DUPLICATE_WAIT, "the same file is in flight")
    try:
        return (yield from _cached_ocr(settings, cache, key, upload, options, hits, server))
    finally:
        _IN_FLIGHT.release(key)


def _cached_ocr(
    settings: FlowSettings,
    cache: ResultCache,
    key: str,
    upload: Upload,
    options: OCROptions,
    hits: list[bool] | None,
    server: ServerInfo,
) -> Flow[OCRResult]:
    if not options.skip_cache:
        stored = cache.get(key)
        if stored is not None:
            logger.info("cache hit for %s (request %s)", upload.display_name, stored.request_id)
            if hits is not None:
                hits.append(True)
            return stored
        pending = cache.pending_job(key)
        if pending is not None and pending.server_instance not in (None, server.instance):
            logger.info(
                "request %s for %s was sent to a local server that has stopped; submitting again",
                pending.request_id,
                upload.display_name,
            )
            cache.forget_job(key)
            pending = None
        if pending is not None:
            logger.info(
                "resuming request %s for %s from an earlier run",
                pending.request_id,
                upload.display_name,
            )
            try:
                result = yield from wait_for_job(settings, pending, check_first=True)
            except NotFoundError:
                logger.info("request %s expired; submitting again", pending.request_id)
                cache.forget_job(key)
            except JobFailedError:
                cache.forget_job(key)
                raise
            else:
                _store(cache, key, result)
                return result
    deadline = settings.clock.monotonic() + settings.polling.timeout
    job = yield from submit_job(settings, upload, options, deadline=deadline)
    # Recorded before waiting: if this run dies now, the next one re-polls instead of paying.
    cache.record_job(key, job)
    submitted_at = settings.clock.monotonic()
    try:
        result = yield from wait_for_job(
            settings, job, deadline=deadline, submitted_at=submitted_at
        )
    except JobFailedError:
        cache.forget_job(key)
        raise
    _store(cache, key, result)
    return result


class _InFlight:
    """Cache keys being OCRed right now in this process, so a duplicate waits for the first."""

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, key: str) -> bool:
        with self._lock:
            if key in self._keys:
                return False
            self._keys.add(key)
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._keys.discard(key)


# Keys include the service (base URL or local server identity) and the content, so one set
# serves every client of the process.
_IN_FLIGHT = _InFlight()
_DUPLICATE_WAIT = 0.25


def _store(cache: ResultCache, key: str, result: OCRResult) -> None:
    # A result without pages is most likely a fault worth asking again about, not an answer
    # to keep for ever; the integrations refuse it as a failure.
    if result.pages:
        cache.put(key, result)
    else:
        cache.forget_job(key)


def page_weights(
    todo: Sequence[tuple[int, str, Upload]], options: OCROptions, enabled: bool
) -> dict[int, int]:
    """Each file's expected pages, for a progress bar that counts pages (only when shown:
    it reads every file up front, which the batch would otherwise do as it goes)."""
    if not enabled:
        return {}
    return {index: expected_pages(upload, options) for index, _, upload in todo}


@contextmanager
def progress_bar(files: int, enabled: bool, description: str, pages: int = 0) -> Iterator[Any]:
    """A progress bar over pages when their count is known (else files), with the files done,
    the pages returned and the failures shown beside it: one 20-page scan left of 25 files
    is most of the work, not 4 % of it. While it is shown, console log lines are written
    above it instead of across it."""
    if not enabled:
        # Not even a disabled tqdm: it takes a multiprocessing lock, which a process-pool
        # worker killed at the end of a pool (SimpleDirectoryReader's num_workers) leaks.
        yield _NoBar()
        return
    unit, total = ("page", pages) if pages else ("file", files)
    with tqdm(total=total, unit=unit, desc=description, leave=True) as bar, logging_above_bars():
        yield bar


class _NoBar:
    """What :func:`note_progress` calls on a bar, doing nothing."""

    def set_postfix(self, **_: Any) -> None:
        """Ignore the counts."""

    def update(self, _: float = 1) -> None:
        """Ignore the progress."""


def note_progress(
    bar: Any, item: BatchItem, counts: dict[str, int], weights: dict[int, int] | None = None
) -> None:
    """Advance ``bar`` by one file (its expected pages, when counting pages) and show the
    running file, page and failure counts."""
    counts["files"] = counts.get("files", 0) + 1
    counts["pages"] += len(item.result.pages) if item.result is not None else 0
    counts["failed"] += 0 if item.ok else 1
    bar.set_postfix(
        files=counts["files"], pages=counts["pages"], failed=counts["failed"], refresh=False
    )
    bar.update(weights.get(item.index, 1) if weights else 1)


def report_failure(item: BatchItem, policy: ErrorPolicy) -> None:
    """Log a failed file; every policy logs it, so a failure is never silent."""
    level = logging.ERROR if policy == "raise" else logging.WARNING
    logger.log(level, "failed: %s: %s", item.source, item.error)
