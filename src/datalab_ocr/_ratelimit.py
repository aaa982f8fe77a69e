"""A client-side rate limiter that keeps a batch under the account's request limit.

The hosted API allows 200 requests per 60 s per account, polls included (assumed). Bouncing
off that limit costs a 429, a backoff and a retry for every request over it; spacing requests
on the client costs nothing but the wait the server would have imposed anyway.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol, runtime_checkable

__all__ = ["Limiter", "RateLimiter"]


@runtime_checkable
class Limiter(Protocol):
    """What a client asks of its rate limiter; :class:`RateLimiter` is the in-process one.

    Another implementation (a cluster-wide one, say) can be passed as ``rate_limit=``. Both
    methods are called from the job flow before each request, so they must answer quickly;
    the async client calls them on its event loop.
    """

    def reserve(self, now: float) -> float:
        """Book the next request slot; return how many seconds from ``now`` to wait for it."""
        ...

    def saturated(self, now: float) -> bool:
        """Whether a request booked at ``now`` would have to wait for a slot."""
        ...


class RateLimiter:
    """At most ``requests`` requests in any ``window`` seconds, shared by every user of it.

    It works by reservation: :meth:`reserve` books the earliest slot that keeps every sliding
    window of ``window + margin`` seconds within the limit and says how long to wait for it.
    Slots are handed out first come, first served. ``margin`` absorbs the difference between
    when a request leaves here and when the server counts it.

    One limiter can be shared by several clients, sync and async (it is thread-safe and never
    blocks for long), when they spend one account's budget.
    """

    def __init__(self, requests: int = 200, window: float = 60.0, *, margin: float = 0.5) -> None:
        if requests < 1 or window <= 0 or margin < 0:
            raise ValueError("RateLimiter needs requests >= 1, window > 0 and margin >= 0")
        self.requests = requests
        self.window = window
        self.margin = margin
        self._slots: deque[float] = deque(maxlen=requests)
        self._lock = threading.Lock()

    def reserve(self, now: float) -> float:
        """Book the next slot and return how many seconds from ``now`` to wait for it."""
        with self._lock:
            slot = now
            if self._slots:
                slot = max(slot, self._slots[-1])
            if len(self._slots) == self.requests:
                slot = max(slot, self._slots[0] + self.window + self.margin)
            self._slots.append(slot)
            return slot - now

    def saturated(self, now: float) -> bool:
        """Whether a request reserved at ``now`` would have to wait for a slot."""
        with self._lock:
            return (
                len(self._slots) == self.requests
                and self._slots[0] + self.window + self.margin > now
            )

    def __repr__(self) -> str:
        return f"RateLimiter(requests={self.requests}, window={self.window:g})"
