"""The client-side rate limiter."""

from __future__ import annotations

import threading

import pytest

from datalab_ocr import Limiter, RateLimiter

from .conftest import Harness, complete, page, processing, submitted


def test_requests_within_the_limit_go_at_once() -> None:
    limiter = RateLimiter(requests=3, window=10, margin=0)

    assert [limiter.reserve(0.0) for _ in range(3)] == [0, 0, 0]


def test_the_next_request_waits_for_the_oldest_to_leave_the_window() -> None:
    limiter = RateLimiter(requests=3, window=10, margin=0.5)
    for now in (0.0, 1.0, 2.0):
        limiter.reserve(now)

    assert limiter.reserve(3.0) == pytest.approx(7.5)


def test_no_window_ever_holds_more_than_the_limit() -> None:
    limiter = RateLimiter(requests=5, window=1.0, margin=0)
    slots = []
    now = 0.0
    for _ in range(60):
        slots.append(now + limiter.reserve(now))
        now += 0.05

    for first in slots:
        assert sum(first <= slot < first + 1.0 for slot in slots) <= 5


def test_slots_are_served_in_order() -> None:
    limiter = RateLimiter(requests=2, window=10, margin=0)
    slots = [limiter.reserve(0.0) for _ in range(6)]

    assert slots == sorted(slots)
    assert slots == [0, 0, 10, 10, 20, 20]


def test_threads_share_one_budget() -> None:
    limiter = RateLimiter(requests=10, window=60, margin=0)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            wait = limiter.reserve(0.0)
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted(waits) == [0.0] * 10 + [60.0] * 10


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="requests >= 1"):
        RateLimiter(requests=0)


def test_saturated_says_whether_the_next_request_would_wait() -> None:
    limiter = RateLimiter(requests=2, window=10, margin=0)

    assert not limiter.saturated(0.0)
    limiter.reserve(0.0)
    limiter.reserve(1.0)

    assert limiter.saturated(5.0)
    assert not limiter.saturated(10.5)


class _CountingLimiter:
    """A limiter of one's own: books nothing, counts the slots asked for."""

    def __init__(self) -> None:
        self.reserved = 0

    def reserve(self, now: float) -> float:
        self.reserved += 1
        return 0.0

    def saturated(self, now: float) -> bool:
        return False


def test_a_client_asks_its_own_limiter_before_every_request(harness: Harness) -> None:
    limiter = _CountingLimiter()
    assert isinstance(limiter, Limiter)
    harness.client_kwargs["rate_limit"] = limiter
    harness.service.submits.append(submitted())
    harness.service.polls.extend([processing(), complete(page(1, "hello"))])

    harness.call("ocr", b"%PDF-1.4 tiny\n%%EOF\n", filename="a.pdf")

    assert limiter.reserved == len(harness.service.requests) == 3
