"""Progress and the final report of a distributed OCR run.

Workers add what they did (files, pages, failures, requests, 429 answers) to one small
actor per run; the driver reads it while the run goes on and when it is over. Counts are
sent when a unit of work is finished; a unit that Ray retries after its worker died counts
the requests of both attempts (they were sent) but its pages once, unless the first attempt
died between counting and handing its rows over.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import ray

from datalab_ocr._wording import counted

from ._limiter import NAMESPACE

__all__ = ["OCRProgress", "OCRReport", "Tally"]

logger = logging.getLogger(__name__)

_FIELDS = ("files", "pages", "failures", "skipped", "requests", "rate_limited")


@dataclass(frozen=True)
class OCRReport:
    """What a run did.

    ``files`` and ``pages`` count successful files and their pages (``skipped`` of those
    files were found done in the output location and not processed again); ``failures`` the
    files (or, in local mode, chunks of pages) that failed; ``requests`` the HTTP requests
    sent (hosted mode) and ``rate_limited`` how many of them were answered 429;
    ``seconds`` runs from the first unit started to the last finished; ``nodes`` is how many
    cluster nodes did some of the work.
    """

    files: int
    pages: int
    failures: int
    skipped: int
    requests: int
    rate_limited: int
    seconds: float
    nodes: int = 0

    @property
    def pages_per_second(self) -> float:
        """Pages per second of wall time."""
        return self.pages / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.files} files ({self.skipped} already done), {self.pages} pages, "
            f"{self.failures} failures, {self.requests} requests, {self.rate_limited} x 429, "
            f"{self.seconds:.1f} s, {self.pages_per_second:.1f} pages/s, "
            f"{counted(self.nodes, 'node')}"
        )


class Tally:
    """The actor's body: counters and the span of time they cover."""

    def __init__(self) -> None:
        self._counts = dict.fromkeys(_FIELDS, 0)
        self._first: float | None = None
        self._last: float | None = None
        self._nodes: set[str] = set()

    def start(self) -> None:
        """A unit of work began."""
        if self._first is None:
            self._first = time.time()

    def add(self, counts: dict[str, int], node: str) -> None:
        """A unit of work ended on ``node`` with these counts."""
        now = time.time()
        self._nodes.add(node)
        if self._first is None:
            self._first = now
        self._last = now
        for name, value in counts.items():
            self._counts[name] += value

    def snapshot(self) -> dict[str, Any]:
        """The counters and the seconds covered."""
        span = 0.0
        if self._first is not None and self._last is not None:
            span = self._last - self._first
        return {**self._counts, "seconds": span, "nodes": len(self._nodes)}


class OCRProgress:
    """Counts a run's work across the cluster; pass it to ``read_ocr(progress=...)``.

    Create it on the driver after ``ray.init``; read :meth:`report` at any time (progress)
    or after the dataset is consumed (the final report). The counting actor lives as long
    as this object's driver.
    """

    def __init__(self) -> None:
        self.name = f"datalab-ocr-progress-{uuid.uuid4().hex[:12]}"
        self._actor: Any = (
            ray.remote(Tally).options(name=self.name, namespace=NAMESPACE, num_cpus=0).remote()
        )

    def report(self) -> OCRReport:
        """What the run has done so far."""
        return OCRReport(**ray.get(self._actor.snapshot.remote(), timeout=60))

    def __repr__(self) -> str:
        return f"OCRProgress(name={self.name!r})"


class TallyClient:
    """A worker's handle on a run's counting actor (by name), or a no-op without one."""

    def __init__(self, name: str | None) -> None:
        self._actor = None if name is None else ray.get_actor(name, namespace=NAMESPACE)

    def start(self) -> None:
        """Note that a unit of work began."""
        if self._actor is not None:
            self._actor.start.remote()

    def add(self, **counts: int) -> None:
        """Add a finished unit's counts; waits for the actor, so the counts are in before
        the unit's rows reach the driver and a final report misses none."""
        if self._actor is not None:
            node = ray.get_runtime_context().get_node_id()
            ray.get(self._actor.add.remote(counts, node), timeout=60)
