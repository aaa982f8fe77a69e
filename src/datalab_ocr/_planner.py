"""Adaptive polling: when to ask about a job, learned from the jobs before it.

Every poll is a request, and under the account's rate limit requests are throughput: a batch
can finish no faster than (requests per job) x files / (requests per minute). So the planner
aims the first poll at when the job is expected to be done, and only after a miss steps in
small increments, so completion is still noticed within max(``min_gap``, ``growth`` x elapsed).

What it knows comes from completed jobs: each gives an interval in which it finished (after
the last "processing" answer, no later than the "complete" one), divided by the job's size in
pages so that jobs of different sizes inform each other. Until anything is known, one job at
a time (the probe) polls in small steps to measure; the others follow the plain
:class:`~datalab_ocr.PollPolicy` schedule and re-plan as soon as the probe reports.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass

from ._policies import PollPolicy

__all__ = ["JobClock", "PollPlanner"]


@dataclass
class JobClock:
    """What one job's polling has seen so far, in seconds since its submit."""

    units: float = 1.0
    polls: int = 0
    last_running: float | None = None
    probe: bool = False


class PollPlanner:
    """Plans polls for every job of a client; thread-safe, shared across a batch.

    ``quantile`` of the recent per-page durations, times ``headroom``, is where a first poll is
    aimed: high enough that most first polls find the job done, low enough that completion is
    noticed soon after. ``growth`` and ``min_gap`` set the steps after a miss.
    """

    def __init__(
        self,
        policy: PollPolicy,
        *,
        growth: float = 0.1,
        min_gap: float = 0.5,
        quantile: float = 0.8,
        headroom: float = 1.02,
        memory: int = 24,
    ) -> None:
        self.policy = policy
        self.growth = growth
        self.min_gap = min_gap
        self.quantile = quantile
        self.headroom = headroom
        self._samples: deque[float] = deque(maxlen=memory)
        self._probe_taken = False
        self._lock = threading.Lock()

    def begin(self, units: float) -> JobClock:
        """Start planning for a job of ``units`` pages (at least 1)."""
        job = JobClock(units=max(1.0, units))
        if self.policy.adaptive:
            with self._lock:
                if not self._samples and not self._probe_taken:
                    self._probe_taken = job.probe = True
        return job

    def learning(self, job: JobClock) -> bool:
        """Whether the job waits on the fixed schedule for an estimate that may come any time."""
        return self.policy.adaptive and not job.probe and not self._samples

    def next_poll(self, job: JobClock, rng: random.Random) -> float:
        """Seconds after the submit at which to poll next."""
        if not self.policy.adaptive:
            return (job.last_running or 0.0) + self.policy.delay(job.polls + 1, rng)
        last = job.last_running
        after_miss = 0.0 if last is None else last + max(self.min_gap, self.growth * last)
        expected = self.expected(job.units)
        if expected is not None:
            return max(expected * self.headroom, after_miss)
        if job.probe:
            return max(after_miss, self.min_gap)
        return (last or 0.0) + self.policy.delay(job.polls + 1, rng)

    def expected(self, units: float) -> float | None:
        """The planned duration of a job of ``units`` pages, or None before any job finished."""
        with self._lock:
            if not self._samples:
                return None
            ordered = sorted(self._samples)
        rank = min(len(ordered) - 1, int(self.quantile * len(ordered)))
        return ordered[rank] * max(1.0, units)

    def running(self, job: JobClock, elapsed: float) -> None:
        """Record that the job was still running ``elapsed`` seconds after its submit."""
        job.polls += 1
        job.last_running = elapsed

    def finished(self, job: JobClock, elapsed: float | None) -> None:
        """Record a job's end: complete at ``elapsed``, or None when it failed or was abandoned.

        A tight interval (the job was seen running shortly before) gives its midpoint. A loose
        one gives an upper bound only; it is shaded down a little so the estimate can drift
        lower until a miss measures the truth again, rather than creep upward forever.
        """
        with self._lock:
            if job.probe:
                self._probe_taken = False
            if elapsed is None:
                return
            lower = job.last_running
            if lower is not None and elapsed - lower <= 0.25 * elapsed:
                duration = (lower + elapsed) / 2
            else:
                duration = elapsed * 0.95
            self._samples.append(duration / job.units)
