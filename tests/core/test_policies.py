"""Retry and polling policies as pure functions."""

from __future__ import annotations

import random

import pytest

from datalab_ocr import PollPolicy, RetryPolicy
from datalab_ocr._policies import is_retryable_status, parse_retry_after


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504, 529, 599])
def test_these_statuses_are_retried(code: int) -> None:
    assert is_retryable_status(code)


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 413, 422])
def test_these_statuses_are_never_retried(code: int) -> None:
    assert not is_retryable_status(code)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        (None, None),
    ],
)
def test_retry_after_forms(header: str | None, seconds: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(header, now=now) == seconds


def test_retry_waits_stay_within_the_jitter_band_and_the_cap() -> None:
    policy = RetryPolicy(initial_delay=1, multiplier=2, max_delay=8, jitter=0.25)
    rng = random.Random(1)
    for attempt, base in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 8)]:
        for _ in range(50):
            assert 0.75 * base <= policy.delay(attempt, None, rng) <= base


def test_retry_after_replaces_the_backoff_up_to_a_bound() -> None:
    policy = RetryPolicy(max_retry_after=60)
    rng = random.Random(1)
    assert policy.delay(1, 12.0, rng) == 12.0
    assert policy.delay(1, 3600.0, rng) == 60.0


def test_poll_gaps_vary_both_ways_within_the_jitter() -> None:
    policy = PollPolicy(initial_delay=2, jitter=0.1)
    rng = random.Random(3)
    gaps = [policy.delay(1, rng) for _ in range(200)]
    assert 1.8 <= min(gaps) < 1.9
    assert 2.1 < max(gaps) <= 2.2


@pytest.mark.parametrize(
    "make",
    [
        lambda: RetryPolicy(max_attempts=0),
        lambda: RetryPolicy(jitter=2),
        lambda: PollPolicy(timeout=0),
        lambda: PollPolicy(multiplier=0.5),
    ],
)
def test_nonsense_policies_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]
