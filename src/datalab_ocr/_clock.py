"""Time as the job flow sees it: a monotonic clock, wall time, and ways to wait.

The clients take a :class:`Clock` so that tests and simulations run in fake time: the
:class:`FakeClock` in :mod:`datalab_ocr.testing` moves forward when asked to sleep, at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What the clients need of time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for deadlines)."""

    def wall(self) -> float:
        """Seconds since the epoch (for HTTP-date ``Retry-After`` values)."""

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"
