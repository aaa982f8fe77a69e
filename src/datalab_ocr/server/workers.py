"""A bounded pool of OCR worker processes, started on first use and rebuilt after a crash.

Processes, not threads: OCR is CPU-bound and PDFium is not thread-safe. They are started
with ``spawn`` because the server may live in a thread of a larger process (a notebook, a
test run), where forking copies locks held by other threads.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

__all__ = ["WorkerCrashedError", "WorkerPool"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class WorkerCrashedError(RuntimeError):
    """A worker process died while running a task (killed, out of memory, a native crash)."""


def _init_worker() -> None:
    # Tesseract uses OpenMP; with several workers on few cores, its threads would fight.
    # Set before the worker imports tesserocr, which reads it when the library loads.
    os.environ["OMP_THREAD_LIMIT"] = "1"


class WorkerPool:
    """Runs functions in worker processes from asyncio code."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            if self._executor is None:
                logger.debug("starting %d OCR worker processes", self.workers)
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                )
            return self._executor

    def _discard(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                logger.warning("an OCR worker process died; starting a new pool")
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function(*args, **kwargs)`` in a worker and return its result.

        Raises :class:`WorkerCrashedError` when the worker died; the next call starts a fresh
        pool, so one crash fails the tasks running in it and nothing after.
        """
        executor = self._get()
        try:
            future = executor.submit(function, *args, **kwargs)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            self._discard(executor)
            raise WorkerCrashedError(
                "An OCR worker process stopped unexpectedly while processing this document"
            ) from exc

    @property
    def started(self) -> bool:
        """Whether worker processes have been started."""
        return self._executor is not None

    def shutdown(self) -> None:
        """Stop the workers; queued tasks are cancelled, running ones finish first."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
