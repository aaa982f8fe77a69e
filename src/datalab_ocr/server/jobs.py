"""The job store: job states, expiry of results, and the cache of completed results. No I/O.

Time is passed in (``now``, from ``time.monotonic``) so expiry can be tested without waiting.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from datalab_ocr._models import OCRResult

__all__ = ["CachedPages", "Job", "JobStore"]

PROCESSING = "processing"
COMPLETE = "complete"


@dataclass
class Job:
    """One submitted document; ``result`` is set when the job completes."""

    request_id: str
    created: float
    result: OCRResult | None = None
    completed: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def status(self) -> str:
        """``processing`` or ``complete``."""
        return PROCESSING if self.result is None else COMPLETE

    def check_body(self) -> dict[str, Any]:
        """The JSON body of ``GET /api/v1/ocr/{request_id}`` for this job."""
        if self.result is None:
            return {"status": PROCESSING}
        return self.result.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class CachedPages:
    """A successful result kept for identical requests."""

    pages: list[dict[str, Any]]
    versions: dict[str, str] = field(default_factory=dict)


class JobStore:
    """Jobs by request id, deleted ``ttl`` seconds after they complete."""

    def __init__(self, *, ttl: float, cache_size: int) -> None:
        self.ttl = ttl
        self.cache_size = cache_size
        self._jobs: dict[str, Job] = {}
        self._cache: OrderedDict[str, CachedPages] = OrderedDict()
        self._last_purge = float("-inf")

    def create(self, now: float) -> Job:
        """A new job in ``processing``, with an opaque id shaped like the hosted API's."""
        job = Job(request_id=secrets.token_urlsafe(16), created=now)
        self._jobs[job.request_id] = job
        return job

    def complete(self, job: Job, result: OCRResult, now: float) -> None:
        """Mark ``job`` complete with ``result``; its expiry clock starts now."""
        job.result = result
        job.completed = now
        # Wakes every long poll waiting on this job (they answer within milliseconds).
        job.done.set()

    def get(self, request_id: str, now: float) -> Job | None:
        """The job, or None when the id is unknown or its result has expired."""
        self.purge(now)
        job = self._jobs.get(request_id)
        if job is not None and self._expired(job, now):
            del self._jobs[request_id]
            return None
        return job

    def _expired(self, job: Job, now: float) -> bool:
        return job.completed is not None and now - job.completed >= self.ttl

    def purge(self, now: float) -> None:
        """Forget expired jobs (at most once a second: it walks every job)."""
        if now - self._last_purge < 1.0:
            return
        self._last_purge = now
        for request_id in [rid for rid, job in self._jobs.items() if self._expired(job, now)]:
            del self._jobs[request_id]

    @property
    def active(self) -> int:
        """How many jobs are still processing."""
        return sum(1 for job in self._jobs.values() if job.result is None)

    def __len__(self) -> int:
        return len(self._jobs)

    def cached(self, key: str) -> CachedPages | None:
        """The cached result for ``key``, refreshed as most recently used."""
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
        return found

    def remember(self, key: str, value: CachedPages) -> None:
        """Cache a successful result, dropping the least recently used beyond the size."""
        if self.cache_size <= 0:
            return
        self._cache[key] = value
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
