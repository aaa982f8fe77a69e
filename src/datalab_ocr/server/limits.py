"""The hosted-style request rate limit and the counters benchmarks read. No I/O."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass

__all__ = ["RateLimiter", "Stats", "retry_after_header"]


class RateLimiter:
    """At most ``requests`` accepted requests in any ``window`` seconds (a sliding log).

    Refused requests are not counted, so a client that honours ``Retry-After`` gets through.
    """

    def __init__(self, requests: int, window: float) -> None:
        self.requests = requests
        self.window = window
        self._accepted: deque[float] = deque()

    def acquire(self, now: float) -> float | None:
        """Count a request at ``now``; or, when over the limit, the seconds until a slot frees."""
        while self._accepted and self._accepted[0] <= now - self.window:
            self._accepted.popleft()
        if len(self._accepted) >= self.requests:
            return self._accepted[0] + self.window - now
        self._accepted.append(now)
        return None

    def message(self) -> str:
        """The 429 detail, worded like the hosted API's."""
        return (
            f"Rate limit exceeded. You can make {self.requests} requests every "
            f"{self.window:g} seconds; wait and retry."
        )


def retry_after_header(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))


@dataclass
class Stats:
    """What the server has seen since it started, served at ``GET /_local/stats``.

    ``submits`` and ``polls`` count every attempt, refused ones included, so that
    ``requests == submits + polls`` and a benchmark sees the load it really put on the server.
    """

    requests: int = 0
    submits: int = 0
    polls: int = 0
    rate_limited: int = 0
    queue_full: int = 0
    unauthorized: int = 0
    jobs_completed: int = 0
    jobs_failed: int = 0
    cache_hits: int = 0
    pages: int = 0
    last_completed: float = 0.0
    """``time.monotonic()`` when the last job completed, for benchmarks of notice latency."""

    @property
    def too_many_requests(self) -> int:
        """Every 429 answered: rate limit and full queue."""
        return self.rate_limited + self.queue_full

    def as_dict(self) -> dict[str, float]:
        """The counters as a JSON-ready dict, with the total of 429 answers."""
        return {**asdict(self), "http_429": self.too_many_requests}
