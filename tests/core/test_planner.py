"""Adaptive polling: the planner learns job durations and aims polls at them."""

from __future__ import annotations

import itertools
import random

import pytest

from datalab_ocr import PollPolicy
from datalab_ocr._planner import PollPlanner

RNG = random.Random(0)


def run_job(
    planner: PollPlanner, duration: float, units: float = 1, *, throttled: bool = False
) -> list[float]:
    """Poll one job that completes ``duration`` s after submit; return the poll times."""
    job = planner.begin(units)
    polls = []
    while True:
        at = planner.next_poll(job, RNG, throttled=throttled)
        polls.append(at)
        if at >= duration:
            planner.finished(job, at)
            return polls
        planner.running(job, at)


def test_the_first_job_probes_in_small_steps_and_notices_completion_soon() -> None:
    planner = PollPlanner(PollPolicy())

    polls = run_job(planner, 20.0)

    assert polls[-1] - 20.0 <= max(0.5, 0.1 * 20.0)


SIMILAR = [10.0 * (1 + 0.02 * ((i * 7) % 5 - 2)) for i in range(60)]


def test_under_a_saturated_limit_later_jobs_of_similar_length_need_about_one_poll() -> None:
    planner = PollPlanner(PollPolicy())
    counts = [len(run_job(planner, duration, throttled=True)) for duration in SIMILAR]

    later = counts[10:]
    assert sum(later) / len(later) <= 1.5


def test_with_requests_free_later_jobs_are_noticed_within_a_tenth_in_few_polls() -> None:
    planner = PollPlanner(PollPolicy())
    runs = [(duration, run_job(planner, duration)) for duration in SIMILAR]

    later = runs[10:]
    assert sum(len(polls) for _, polls in later) / len(later) <= 2.5
    assert all(polls[-1] - duration <= 0.1 * duration for duration, polls in later)


def test_completion_is_noticed_within_ten_percent_once_learned() -> None:
    planner = PollPlanner(PollPolicy())
    for _ in range(10):
        run_job(planner, 30.0)

    polls = run_job(planner, 30.0)

    assert 30.0 <= polls[-1] <= 33.0


def test_durations_are_learned_per_page_once_sizes_vary() -> None:
    planner = PollPlanner(PollPolicy())
    for pages in (2, 8, 4, 16, 2, 8, 4, 16, 2, 8):
        run_job(planner, 2.0 * pages, units=pages)

    assert planner.expected(40) == pytest.approx(80.0, rel=0.1)


def test_look_alike_jobs_teach_no_time_per_page() -> None:
    planner = PollPlanner(PollPolicy())
    for _ in range(10):
        run_job(planner, 4.0, units=2)

    assert planner.expected(100) == pytest.approx(planner.expected(2))


def test_a_big_job_after_look_alike_small_ones_is_noticed_within_a_second() -> None:
    planner = PollPlanner(PollPolicy())
    for _ in range(10):
        run_job(planner, 4.0, units=2)

    polls = run_job(planner, 0.8, units=117)

    assert polls[-1] <= 1.0


def test_a_big_job_after_one_slow_scan_is_polled_first_within_a_second() -> None:
    planner = PollPlanner(PollPolicy())
    run_job(planner, 140.0, units=1)  # one slow one-page scan

    polls = run_job(planner, 0.8, units=117)

    assert polls[0] <= 1.0
    assert polls[-1] <= 1.6


def test_an_unsure_first_poll_backs_off_by_doubling_up_to_the_estimate() -> None:
    planner = PollPlanner(PollPolicy())
    run_job(planner, 40.0, units=1)

    polls = run_job(planner, 45.0, units=117)

    assert polls[:4] == pytest.approx([1.0, 2.0, 4.0, 8.0])
    assert polls[-1] - 45.0 <= 0.1 * 45.0 + 1e-9
    assert len(polls) <= 10


def test_one_slow_outlier_does_not_push_out_the_first_polls_of_jobs_like_the_others() -> None:
    planner = PollPlanner(PollPolicy())
    for _ in range(10):
        run_job(planner, 5.0)
    run_job(planner, 140.0)

    polls = run_job(planner, 5.0)

    assert polls[0] <= 5.5
    assert polls[-1] - 5.0 <= 0.5


def test_a_probe_done_at_its_first_poll_teaches_the_jobs_waiting_for_it() -> None:
    planner = PollPlanner(PollPolicy())
    probe = planner.begin(1)
    waiting = planner.begin(1)
    assert planner.next_poll(probe, RNG) == 0.5

    planner.finished(probe, 0.5)

    assert planner.next_poll(waiting, RNG) <= 0.5


def test_after_a_miss_polls_step_by_a_tenth_of_the_elapsed_time() -> None:
    planner = PollPlanner(PollPolicy())
    for _ in range(5):
        run_job(planner, 10.0)

    polls = run_job(planner, 40.0)
    steps = list(itertools.pairwise(polls))

    assert all(b - a == pytest.approx(max(0.5, 0.1 * a)) for a, b in steps)


def test_only_one_job_probes_while_nothing_is_known() -> None:
    planner = PollPlanner(PollPolicy())

    first, second = planner.begin(1), planner.begin(1)

    assert (first.probe, second.probe) == (True, False)
    assert planner.learning(second)


def test_a_failed_probe_hands_probing_to_the_next_job() -> None:
    planner = PollPlanner(PollPolicy())
    first = planner.begin(1)
    planner.finished(first, None)

    assert planner.begin(1).probe


def test_fixed_schedule_when_not_adaptive() -> None:
    planner = PollPlanner(PollPolicy(initial_delay=2, multiplier=2, jitter=0, adaptive=False))
    job = planner.begin(1)
    times = []
    for _ in range(3):
        at = planner.next_poll(job, RNG)
        times.append(at)
        planner.running(job, at)

    assert times == [2, 6, 14]


def test_under_a_saturated_rate_limit_first_polls_aim_later() -> None:
    planner = PollPlanner(PollPolicy())
    for _ in range(5):
        run_job(planner, 10.0)
    job = planner.begin(1)

    expected = planner.expected(1)
    free = planner.next_poll(job, RNG)
    throttled = planner.next_poll(job, RNG, throttled=True)

    assert expected is not None
    assert throttled == pytest.approx(expected * 1.2)
    assert free < throttled


def test_a_late_estimate_comes_down_quickly_when_every_first_poll_hits() -> None:
    planner = PollPlanner(PollPolicy())
    for _ in range(5):
        run_job(planner, 20.0)
    before = planner.expected(1)
    assert before is not None

    # The jobs became four times faster: every first poll now finds the job long done.
    counts = [len(run_job(planner, 5.0)) for _ in range(60)]

    after = planner.expected(1)
    assert after is not None
    assert after < before / 2
    assert max(counts[-10:]) <= 2


def test_under_a_rate_limit_jobs_waiting_for_the_probe_do_not_poll_before_patience() -> None:
    planner = PollPlanner(PollPolicy(), patience=8.0)
    planner.begin(1)  # the probe
    waiting = planner.begin(1)

    assert planner.next_poll(waiting, RNG, scarce=True) == 8.0
    planner.running(waiting, 8.0)
    assert planner.next_poll(waiting, RNG, scarce=True) == 16.0


def test_with_requests_free_jobs_waiting_for_the_probe_measure_on_their_own() -> None:
    planner = PollPlanner(PollPolicy())
    planner.begin(1)  # the probe
    waiting = planner.begin(1)

    assert planner.next_poll(waiting, RNG) == 0.5


def test_a_fixed_overhead_is_not_taken_for_time_per_page() -> None:
    planner = PollPlanner(PollPolicy())
    for pages in (1, 10, 20, 40, 1, 30):
        job = planner.begin(pages)
        duration = 3.0 + 1.0 * pages
        # Measured closely: seen running just before the end.
        planner.running(job, duration - 0.2)
        planner.finished(job, duration + 0.2)

    expected = planner.expected(50)
    assert expected is not None
    assert expected == pytest.approx(53.0, rel=0.15)


def test_a_resumed_job_of_unknown_start_follows_the_fixed_schedule() -> None:
    policy = PollPolicy(initial_delay=2, multiplier=2, jitter=0)
    planner = PollPlanner(policy)
    for _ in range(5):
        run_job(planner, 30.0)
    job = planner.begin(1, known_start=False)
    times = []
    for _ in range(3):
        at = planner.next_poll(job, RNG)
        times.append(at)
        planner.running(job, at)

    assert times == [2, 6, 14]
    assert not job.probe


def test_a_job_that_waited_for_the_probe_polls_at_its_estimate_not_at_once() -> None:
    planner = PollPlanner(PollPolicy())
    probe = planner.begin(1)
    waiting = planner.begin(3)
    run_probe = [0.5 * step for step in range(1, 11)]
    for at in run_probe:
        planner.running(probe, at)
    planner.finished(probe, 5.25)

    at = planner.next_poll(waiting, RNG, scarce=True, elapsed=4.8)

    assert at == pytest.approx(5.0, rel=0.05)


def test_under_a_rate_limit_the_probe_measures_a_5_s_job_in_at_most_8_polls() -> None:
    planner = PollPlanner(PollPolicy())

    polls = run_job(planner, 5.0, throttled=True)

    assert len(polls) <= 8
    assert planner.expected(1) is not None


def test_the_first_estimate_is_where_the_probe_was_seen_done_not_the_middle() -> None:
    planner = PollPlanner(PollPolicy())
    probe_polls = run_job(planner, 5.0, throttled=True)

    estimate = planner.expected(1)

    # The probe ended between its last two polls; a job like it is surely done only at the
    # end of that interval, so a first poll aimed there does not miss.
    assert estimate is not None and estimate >= probe_polls[-1] - 1e-9


def test_a_probe_poll_held_back_by_the_limiter_still_teaches_the_waiting_jobs() -> None:
    planner = PollPlanner(PollPolicy())
    probe = planner.begin(1)
    waiting = planner.begin(1)
    assert planner.next_poll(waiting, RNG, scarce=True) >= planner.patience
    # The probe's first poll left only at 2.1 s, the limiter holding it, and found it done.
    planner.finished(probe, 2.1)

    assert planner.next_poll(waiting, RNG, scarce=True, elapsed=2.2) <= 2.5


def test_later_polls_held_back_longer_do_not_push_out_the_waiting_jobs_first_look() -> None:
    planner = PollPlanner(PollPolicy())
    planner.finished(planner.begin(1), 2.1)  # the probe, its one poll held back to 2.1 s
    for _ in range(5):
        # Jobs whose first polls the limiter held back even longer, all found done.
        job = planner.begin(1)
        planner.next_poll(job, RNG, scarce=True, throttled=True)
        planner.finished(job, 4.2)
    waiting = planner.begin(1)

    assert planner.next_poll(waiting, RNG, scarce=True) <= 2.1
