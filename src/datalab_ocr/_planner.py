"""Adaptive polling: when to ask about a job, learned from the jobs before it.

Every poll is a request, and under the account's rate limit requests are throughput: a batch
can finish no faster than (requests per job) x files / (requests per minute). So the planner
aims each job's first poll at when the job is expected to be done, and only after a miss
steps in small increments, so completion is still noticed within max(``min_gap``,
``growth`` x elapsed).

It learns in two parts:

* A duration model, ``a + b x pages``, fitted to jobs whose end was measured closely: a job
  seen running shortly before it was seen complete (every miss gives one, and so does the
  probe). Jobs of different sizes inform each other, and a fixed overhead per job is not
  mistaken for time per page. While a rate limit holds every poll back, so that nothing is
  measured closely, wide intervals stand in (their geometric middle).
* A multiplier on that model that tracks a quantile of the true durations
  (``target_hits``): each first poll that finds the job done nudges it down a little, each
  miss pushes it up more, so that share of first polls hits and the rest are noticed within
  one small step. A long run of hits (the estimate is late by more than the jobs' spread)
  speeds the descent up. Polls sent well after their plan (held back by the rate limiter)
  say nothing about the multiplier and are not counted.

Until anything is known, one job at a time (the probe) polls in small steps to measure; the
others wait, checking on their own only sparingly (after ``patience`` seconds, then as their
elapsed time doubles), and re-plan as soon as the probe reports. With ``adaptive=False`` the
fixed :class:`~datalab_ocr.PollPolicy` schedule is used throughout.
"""

from __future__ import annotations

import math
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
    known_start: bool = True
    first_poll: float | None = None


class PollPlanner:
    """Plans polls for every job of a client; thread-safe, shared across a batch.

    ``target_hits`` is the share of first polls meant to find the job done; ``step`` sets how
    fast the multiplier moves; ``growth`` and ``min_gap`` set the steps after a miss;
    ``patience`` is when a job waiting for the probe's first estimate checks on its own;
    after ``patient_hits`` first polls in a row that found the job done, the estimate comes
    down faster with every further one;
    ``memory`` is how many measured jobs the duration model keeps.
    """

    def __init__(
        self,
        policy: PollPolicy,
        *,
        growth: float = 0.1,
        min_gap: float = 0.5,
        target_hits: float = 0.7,
        step: float = 0.02,
        patience: float = 8.0,
        patient_hits: int = 8,
        throttled_margin: float = 1.2,
        memory: int = 48,
    ) -> None:
        self.policy = policy
        self.growth = growth
        self.min_gap = min_gap
        self.target_hits = target_hits
        self.step = step
        self._measured: deque[tuple[float, float]] = deque(maxlen=memory)
        self._loose: deque[tuple[float, float]] = deque(maxlen=memory)
        self._model: tuple[float, float] | None = None
        self._multiplier = 1.0
        self._probe_taken = False
        self.patience = patience
        self._streak = 0
        self.patient_hits = patient_hits
        self.throttled_margin = throttled_margin
        self._lock = threading.Lock()

    def begin(self, units: float, *, known_start: bool = True) -> JobClock:
        """Start planning for a job of ``units`` pages (at least 1).

        A job whose submit time is unknown (resumed after a restart) cannot be timed against
        the estimate; it follows the fixed schedule and teaches nothing.
        """
        job = JobClock(units=max(1.0, units), known_start=known_start)
        if self.policy.adaptive and known_start:
            with self._lock:
                if self._model is None and not self._probe_taken:
                    self._probe_taken = job.probe = True
        return job

    def learning(self, job: JobClock) -> bool:
        """Whether the job waits on the fixed schedule for an estimate that may come any time."""
        return self.policy.adaptive and job.known_start and not job.probe and self._model is None

    def next_poll(self, job: JobClock, rng: random.Random, *, throttled: bool = False) -> float:
        """Seconds after the submit at which to poll next.

        ``throttled`` says the rate limiter has no slot free now: then a poll costs the batch
        a slot that a submit could use, while the wait for a slot delays the notice anyway,
        so the first poll is aimed later (``throttled_margin``), to miss less often.
        """
        last = job.last_running
        if not self.policy.adaptive or not job.known_start:
            return (last or 0.0) + self.policy.delay(job.polls + 1, rng)
        expected = self.expected(job.units)
        if last is not None and (expected is not None or job.probe):
            # Seen running after its expected end (or probing): small steps from here.
            return last + max(self.min_gap, self.growth * last)
        if expected is not None:
            return expected * self.throttled_margin if throttled else expected
        if job.probe:
            return self.min_gap
        # Waiting for the probe: a job like it is most likely still running while the probe
        # is, and the probe's result re-plans this job the moment it arrives. Meanwhile check
        # sparingly, in case this job is much shorter than the probe: after ``patience``
        # seconds, then each time the elapsed time doubles.
        return max(self.patience, 2.0 * (last or 0.0))

    def expected(self, units: float) -> float | None:
        """When to poll a job of ``units`` pages first, or None before any job was measured."""
        with self._lock:
            base = self._base(units)
            return None if base is None else base * self._multiplier

    def _base(self, units: float) -> float | None:
        if self._model is None:
            return None
        fixed, per_page = self._model
        return fixed + per_page * max(1.0, units)

    def running(self, job: JobClock, elapsed: float) -> None:
        """Record that the job was still running at a poll sent ``elapsed`` s after submit."""
        if job.polls == 0:
            job.first_poll = elapsed
        job.polls += 1
        job.last_running = elapsed

    def finished(self, job: JobClock, elapsed: float | None) -> None:
        """Record a job's end: seen complete at a poll sent ``elapsed`` s after its submit, or
        None when it failed or its start is unknown (nothing to learn)."""
        with self._lock:
            if job.probe:
                self._probe_taken = False
            if elapsed is None:
                return
            self._learn_duration(job, elapsed)
            self._track(job, elapsed)

    def _learn_duration(self, job: JobClock, elapsed: float) -> None:
        lower = job.last_running
        if lower is not None and elapsed - lower <= max(self.min_gap, 0.25 * elapsed) + 1e-9:
            # Seen running shortly before: the end is measured closely.
            self._measured.append((job.units, (lower + elapsed) / 2))
        elif lower is not None and not self._measured:
            # Nothing measured closely yet (a rate limit that holds every poll back keeps it
            # so): a job seen running at L and done at U ended somewhere between, and the
            # geometric mean is a fair middle for a wide interval; only until a close one.
            self._loose.append((job.units, math.sqrt(lower * elapsed)))
        self._model = (
            _fit(self._measured or self._loose) if (self._measured or self._loose) else None
        )

    def _track(self, job: JobClock, elapsed: float) -> None:
        """Move the multiplier toward the ``target_hits`` quantile of duration / model.

        The first poll probed the job at ``first`` seconds: a hit says the true end was no
        later, a miss says it was later. Either says something about the current multiplier
        only if the probe stood on the right side of it; a poll held back by the rate
        limiter, or planned under an older estimate, may not.
        """
        base = self._base(job.units)
        if base is None or base <= 0:
            return
        first = elapsed if job.polls == 0 else job.first_poll
        if first is None:
            return
        probe_point = first / base
        if job.polls == 0 and probe_point <= self._multiplier * 1.05:
            # A long run of hits means the estimate is late by more than the spread of the
            # jobs (every first poll finds the job done, so none measures it): speed the
            # descent up with the length of the run. A miss ends the run.
            self._streak += 1
            speed = 1 + max(0, self._streak - self.patient_hits)
            self._multiplier *= math.exp(-self.step * (1.0 - self.target_hits) * speed)
        elif job.polls > 0 and probe_point >= self._multiplier * 0.95:
            self._streak = 0
            self._multiplier *= math.exp(self.step * self.target_hits)
        self._multiplier = min(4.0, max(0.25, self._multiplier))


def _fit(measured: deque[tuple[float, float]]) -> tuple[float, float]:
    """``(fixed, per_page)`` seconds of ``duration = fixed + per_page x pages``.

    Least squares when the measured jobs differ in size; with one size only, everything is
    taken as time per page (the median), which is exact for jobs of that size.
    """
    sizes = {units for units, _ in measured}
    if len(sizes) < 2 or len(measured) < 3:
        rates = sorted(duration / units for units, duration in measured)
        return 0.0, rates[len(rates) // 2]
    count = len(measured)
    mean_units = sum(units for units, _ in measured) / count
    mean_duration = sum(duration for _, duration in measured) / count
    spread = sum((units - mean_units) ** 2 for units, _ in measured)
    covariance = sum(
        (units - mean_units) * (duration - mean_duration) for units, duration in measured
    )
    per_page = max(0.0, covariance / spread)
    fixed = max(0.0, mean_duration - per_page * mean_units)
    if per_page == 0.0 and fixed == 0.0:
        return 0.0, mean_duration / mean_units
    return fixed, per_page
