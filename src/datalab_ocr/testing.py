"""Helpers for testing code that uses datalab-ocr, without a network and without waiting."""

from __future__ import annotations

import asyncio

__all__ = ["FakeClock"]


class FakeClock:
    """A clock whose time moves only when something sleeps on it, and at once.

    Pass it as ``clock=`` to a client: polls, retries and deadlines then run in fake time, so a
    job that "takes" ten minutes finishes in microseconds. ``sleeps`` records every wait.
    """

    def __init__(self, start: float = 1_000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The fake monotonic time."""
        return self._now

    def wall(self) -> float:
        """The fake wall time, moving with the monotonic time."""
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a sleep."""
        self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Record the wait and move time forward by it."""
        self.sleeps.append(seconds)
        self._now += max(0.0, seconds)

    async def asleep(self, seconds: float) -> None:
        """The same as :meth:`sleep`, for the async client; other tasks get their turn."""
        self.sleep(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:.3f})"
