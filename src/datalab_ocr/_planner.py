"""Adaptive polling: when to ask about a job, learned from the jobs before it.

Every poll is a request, and under the account's rate limit requests are throughput: a batch
can finish no faster than (requests per job) x files / (requests per minute). Without a rate
limit, a request costs little and a late notice costs the caller time. So:

* Without a client rate limiter, a job's first poll goes at the low end of what jobs of its
  size have taken (a low quantile of duration / model), then steps by ``growth`` x elapsed
  (at least ``min_gap``), so completion is noticed within that margin.
* Under one (``scarce``), the first poll aims at a quantile of the durations
  (``target_hits``), so most jobs cost one poll, and the rest are noticed within one step.

It learns in three parts:

* A duration model, ``a + b x pages``, fitted robustly (medians of pairwise slopes) to jobs
  whose end was measured closely: a job seen running shortly before it was seen complete, or
  seen complete at a first poll soon after its submit. A slope per page is fitted only once
  the measured sizes differ by at least ``size_spread`` x; before that, look-alike jobs
  teach a fixed duration, never a time per page that would multiply for a larger job.
* The ratios duration / model of closely measured jobs, under the current model (for the
  low quantile), and of jobs that a first poll found long done.
* A multiplier on the model that tracks the ``target_hits`` quantile, moved by each exact
  ratio and, under the limit, by first polls that hit or missed.

What is known bounds the first poll. A job is trusted to its estimate only when at least
``trusted`` jobs have ended and its size lies within 2x of theirs; otherwise its first poll
is no later than the shortest comparable duration measured (jobs within 2x its size;
``policy.initial_delay`` when there is none, or fewer than ``trusted`` jobs have ended), and
polls back off by doubling up to the estimate. One slow job, or jobs of another size, cannot
push a job's first poll out by minutes.

Until anything is known, one job at a time (the probe) polls in small steps to measure
(while requests are free, every job does, every ``min_gap``; under a rate limiter the probe
alone, from ``policy.initial_delay`` by a quarter of its elapsed time, so a 5 s job costs 8
polls rather than 10). Under a limiter the others wait, checking on their own only sparingly
(after ``patience`` seconds, then as their elapsed time doubles), and re-plan as soon as the
probe reports: a close measurement starts the estimate at the end of its interval (where
the probe was seen done), and a job found done at a first poll the limiter held back tells
the jobs like it to look by then, so no one waits out ``patience`` for nothing. With
``adaptive=False`` the fixed :class:`~datalab_ocr.PollPolicy` schedule is used throughout.
"""

from __future__ import annotations

import itertools
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
    aimed: bool = False
    """Whether the first poll aimed at the multiplier (so its hit or miss says something)."""


class PollPlanner:
    """Plans polls for every job of a client; thread-safe, shared across a batch.

    ``target_hits`` is the share of first polls meant to find the job done under a saturated
    rate limit; ``low_quantile`` is where first polls go while requests are free; ``step``
    sets how fast the multiplier moves; ``growth`` and ``min_gap`` set the steps after a miss;
    ``patience`` is when a job waiting for the probe's first estimate checks on its own;
    after ``patient_hits`` first polls in a row that found the job done, the estimate comes
    down faster with every further one; ``memory`` is how many measured jobs the model keeps;
    ``trusted`` and ``size_spread`` are explained in the module docstring.
    """

    def __init__(
        self,
        policy: PollPolicy,
        *,
        growth: float = 0.1,
        min_gap: float = 0.5,
        target_hits: float = 0.7,
        low_quantile: float = 0.03,
        step: float = 0.02,
        patience: float = 8.0,
        patient_hits: int = 8,
        throttled_margin: float = 1.2,
        memory: int = 64,
        trusted: int = 3,
        size_spread: float = 2.0,
    ) -> None:
        self.policy = policy
        self.growth = growth
        self.min_gap = min_gap
        self.target_hits = target_hits
        self.low_quantile = low_quantile
        self.step = step
        self.trusted = trusted
        self.size_spread = size_spread
        self._measured: deque[tuple[float, float]] = deque(maxlen=memory)
        self._loose: deque[tuple[float, float]] = deque(maxlen=memory)
        # Jobs found done at a first poll at the low end: (pages, 0.9 of that time). Only
        # jobs longer than the low end are ever measured closely, so without these the low
        # end could never come down.
        self._early: deque[tuple[float, float]] = deque(maxlen=memory)
        # The sizes of the jobs that ended with a known duration, measured closely or not.
        self._seen: deque[float] = deque(maxlen=memory)
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
            self._claim_probe(job)
        return job

    def _claim_probe(self, job: JobClock) -> None:
        with self._lock:
            if self._model is None and not self._probe_taken:
                self._probe_taken = job.probe = True

    def learning(self, job: JobClock) -> bool:
        """Whether the job waits on the fixed schedule for an estimate that may come any time."""
        return self.policy.adaptive and job.known_start and not job.probe and self._model is None

    def next_poll(
        self,
        job: JobClock,
        rng: random.Random,
        *,
        throttled: bool = False,
        scarce: bool | None = None,
        elapsed: float = 0.0,
    ) -> float:
        """Seconds after the submit at which to poll next.

        ``scarce`` says requests are budget (a client rate limiter is on; by default, whenever
        ``throttled``): a poll then costs the batch a slot a submit could use, so the first
        poll aims at the estimate, to miss less often; otherwise it goes at the low end of the
        durations seen. ``throttled`` says the limiter has no slot free now, so the wait for a
        slot delays the notice anyway: the aim moves later by ``throttled_margin``.
        ``elapsed`` (seconds since the submit) lets a job that re-plans late, such as one
        that waited for the probe, join an unsure job's doubling schedule where it stands
        instead of polling at once.
        """
        scarce = throttled if scarce is None else scarce or throttled
        last = job.last_running
        if not self.policy.adaptive or not job.known_start:
            return (last or 0.0) + self.policy.delay(job.polls + 1, rng)
        if self._model is None and not job.probe:
            # The probe may have ended without teaching anything (it failed): take over.
            self._claim_probe(job)
        plan = self._plan(job.units, scarce, throttled)
        if plan is None:
            if not scarce:
                # While requests are free every job measures in small steps, rather than sit
                # out ``patience`` while a long probe runs.
                return self.min_gap if last is None else self._step_after(last)
            if job.probe:
                # Under a limit the probe's polls are the batch's: it starts at the policy's
                # first delay and steps by a quarter of the elapsed time, the widest step that
                # still measures the job closely.
                if last is None:
                    return max(self.min_gap, self.policy.initial_delay)
                return last + max(self.min_gap, _SCARCE_PROBE_STEP * last)
            # Waiting for the probe: a job like it is most likely still running while the
            # probe is, and the probe's result re-plans this job the moment it arrives.
            # Meanwhile check sparingly, in case this job is much shorter than the probe:
            # after ``patience`` seconds, then each time the elapsed time doubles.
            wait = max(self.patience, 2.0 * (last or 0.0))
            done_by = self._done_by(job.units)
            if done_by is not None and done_by > (last or 0.0):
                # A job like it was found done at a first poll the limiter held back: worth
                # a look by then (the quickest such, as every hold-back is later still).
                wait = min(wait, done_by)
            return wait
        aim, bound, aimed = plan
        if last is None:
            job.aimed = aimed and bound >= aim
            first = bound
            while first < elapsed and first < aim:
                first *= 2.0
            return min(aim, first)
        if last < aim * (1.0 - 1e-9):
            # Below the estimate: a trusted one is polled at once, an unsure one is
            # approached by doubling from what is known.
            return aim if bound >= aim else min(aim, max(2.0 * last, last + self.min_gap))
        return self._step_after(last)

    def _done_by(self, units: float) -> float | None:
        """The earliest that a job within 2x of ``units`` pages was found done at a first
        poll, without any close measurement (a share of it), or None."""
        with self._lock:
            times = [d for size, d in self._early if size <= 2.0 * units and units <= 2.0 * size]
        return min(times, default=None)

    def _step_after(self, last: float) -> float:
        return last + max(self.min_gap, self.growth * last)

    def _plan(
        self, units: float, scarce: bool, throttled: bool
    ) -> tuple[float, float, bool] | None:
        """(where the first poll aims, the latest it may go, whether the aim is the
        multiplier's) for a job of ``units`` pages, or None before anything is known."""
        with self._lock:
            base = self._base(units)
            if base is None:
                return None
            if scarce:
                aim = base * self._multiplier * (self.throttled_margin if throttled else 1.0)
                aimed = True
            else:
                aim = base * min(self._multiplier, self._low_ratio())
                aimed = False
            sizes = list(self._seen)
            inside = bool(sizes) and min(sizes) / 2.0 <= units <= 2.0 * max(sizes)
            if (len(sizes) >= self.trusted and inside) or (not self._measured and self._loose):
                return aim, math.inf, aimed
            comparable = [
                duration
                for size, duration in self._measured
                if size <= 2.0 * units and units <= 2.0 * size
            ]
            if comparable and len(sizes) >= self.trusted:
                return aim, min(comparable), aimed
            return aim, max(self.min_gap, self.policy.initial_delay), aimed

    def _low_ratio(self) -> float:
        """The ``low_quantile`` of duration / model over what is known, under today's model."""
        ratios = []
        for units, duration in itertools.chain(self._measured, self._early):
            base = self._base(units)
            if base is not None and base > 0:
                ratios.append(duration / base)
        if len(ratios) < 5:
            return min(ratios, default=1.0)
        ratios.sort()
        return ratios[int(self.low_quantile * (len(ratios) - 1))]

    def expected(self, units: float) -> float | None:
        """The estimate of a job of ``units`` pages (the ``target_hits`` quantile), or None
        before any job was measured."""
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
            self._seen.append(job.units)
            first_measure = not self._measured
            exact = self._learn_duration(job, elapsed)
            if exact is not None:
                self._follow(exact)
                if first_measure and self._multiplier < elapsed / (exact * self._base_or(job)):
                    # The first close measurement gives the middle of [last seen running,
                    # seen done]: jobs like it are surely done only at the end of that
                    # interval, and under a limit a first poll that misses costs a request.
                    # Start the multiplier there; hits and misses move it from then on.
                    self._multiplier = min(4.0, elapsed / (exact * self._base_or(job)))
            elif job.aimed:
                self._track(job, elapsed)
            elif job.polls == 0:
                self._hit_early(job, elapsed)

    def _learn_duration(self, job: JobClock, elapsed: float) -> float | None:
        """Fold the job into the model; return duration / model when it was measured closely."""
        lower = job.last_running or 0.0
        duration: float | None = None
        if elapsed - lower <= max(self.min_gap, 0.25 * elapsed) + 1e-9:
            # Seen running shortly before (or submitted shortly before): measured closely.
            duration = (lower + elapsed) / 2
            self._measured.append((job.units, duration))
        elif job.last_running is not None:
            # Seen running at L and done at U, far apart (a rate limit holding polls back
            # keeps it so): it ended somewhere between, and the geometric mean is a fair
            # middle for a wide interval. Used while the close ones cannot tell a time per
            # page from a fixed part.
            self._loose.append((job.units, math.sqrt(lower * elapsed)))
        self._model = self._refit()
        if duration is None:
            return None
        base = self._base(job.units)
        if base is None or base <= 0:
            return None
        return duration / base

    def _base_or(self, job: JobClock) -> float:
        base = self._base(job.units)
        return 1.0 if base is None or base <= 0 else base

    def _hit_early(self, job: JobClock, elapsed: float) -> None:
        """A first poll at the low end found the job done: it ended somewhere before, so the
        low end may be too late. A share of that time stands in as a ratio, pulling the low
        end down step by step until first polls come before the shortest jobs' ends."""
        self._early.append((job.units, elapsed * _EARLY_SHARE))

    def _refit(self) -> tuple[float, float] | None:
        measured = self._measured
        if len(measured) >= 3 and _varied(measured, self.size_spread):
            return _fit(measured, self.size_spread)
        both = deque(itertools.chain(measured, self._loose))
        if len(both) >= 3 and _varied(both, self.size_spread):
            return _fit(both, self.size_spread)
        if measured or self._loose:
            return _fit(measured or self._loose, self.size_spread)
        return None

    def _follow(self, ratio: float) -> None:
        """Move the multiplier one step toward the ``target_hits`` quantile of an exact ratio."""
        if ratio <= self._multiplier:
            self._multiplier *= math.exp(-self.step * (1.0 - self.target_hits))
        else:
            self._streak = 0  # a job later than the estimate ends a run of early hits
            self._multiplier *= math.exp(self.step * self.target_hits)
        self._multiplier = min(4.0, max(0.25, self._multiplier))

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


_EARLY_SHARE = 0.9
_SCARCE_PROBE_STEP = 0.25


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _varied(measured: deque[tuple[float, float]], size_spread: float) -> bool:
    sizes = [units for units, _ in measured]
    return max(sizes) >= size_spread * min(sizes)


def _fit(measured: deque[tuple[float, float]], size_spread: float) -> tuple[float, float]:
    """``(fixed, per_page)`` seconds of ``duration = fixed + per_page x pages``.

    Robust to outliers: the slope is the median of the slopes between pairs of jobs of
    different sizes (Theil-Sen), the fixed part the median of what the slope leaves. While
    the sizes measured differ by less than ``size_spread`` x, a slope cannot be told from a
    fixed part, and the median duration is taken as fixed: a batch of look-alike jobs never
    teaches a time per page that a much larger job would multiply.
    """
    sizes = [units for units, _ in measured]
    durations = [duration for _, duration in measured]
    if len(measured) < 3 or max(sizes) < size_spread * min(sizes):
        return _median(durations), 0.0
    slopes = [
        (d2 - d1) / (u2 - u1)
        for (u1, d1), (u2, d2) in itertools.combinations(measured, 2)
        if u2 != u1
    ]
    per_page = max(0.0, _median(slopes))
    fixed = max(0.0, _median([d - per_page * u for u, d in measured]))
    if per_page == 0.0 and fixed == 0.0:
        return _median(durations), 0.0
    return fixed, per_page
