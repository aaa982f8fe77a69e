"""Retry and polling policies: small frozen settings and the pure functions that use them."""

from __future__ import annotations

import math
import random
import socket
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

__all__ = [
    "RETRYABLE_STATUSES",
    "PollPolicy",
    "RetryPolicy",
    "is_name_resolution_error",
    "is_retryable_status",
    "parse_retry_after",
]

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
"""Statuses worth another attempt: timeouts, rate limits, server errors and overload."""


def is_retryable_status(status_code: int) -> bool:
    """Whether a request that got ``status_code`` may succeed if sent again.

    Every 5xx counts, not only the documented ones: an overloaded proxy in front of the service
    answers with whatever it likes. 400, 401, 403, 404, 413 and 422 never do: the same request
    would be refused the same way.
    """
    return status_code in RETRYABLE_STATUSES or status_code >= 500


def is_name_resolution_error(error: BaseException) -> bool:
    """Whether ``error`` (an httpx connection error) comes from a host name that did not
    resolve.

    Such a request is not retried: a name that is unknown now is almost always a typo in the
    base URL or a machine without a network, and backing off for fifteen seconds only hides
    that. httpx keeps the resolver's ``socket.gaierror`` in the chain of causes.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, socket.gaierror):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None.

    ``now`` is the current wall time in seconds since the epoch. A date in the past means
    "now" (0 seconds); an unparseable value is ignored.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _grown(initial: float, multiplier: float, steps: int, cap: float) -> float:
    """``min(cap, initial * multiplier ** steps)``; a float power overflows (OverflowError)
    after some 1,750 steps of 1.5, which a long job's polls reach, so past that it is the cap."""
    try:
        grown = initial * multiplier**steps
    except OverflowError:
        grown = math.inf if initial > 0 else 0.0
    return min(cap, grown)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before sending a failed request again.

    A request is attempted at most ``max_attempts`` times. Waits grow from ``initial_delay``
    by ``multiplier`` up to ``max_delay``, each shortened by a random share of up to
    ``jitter`` so that many clients do not retry in step. A ``Retry-After`` from the server
    replaces the computed wait, up to ``max_retry_after`` seconds.

    ``retry_unsure_submits`` decides what happens when a submit's outcome is unknown: the
    connection broke after the file was sent but before the answer came, the answer was not
    readable, or it was 408, 500, 502 or 504 (a timeout or a gateway that may have given up on
    a service that went on). The service may or may not have started a job. True (the
    default) sends the file again, so the document is not lost but may be billed twice; the
    service's own result cache (``skip_cache=False``) usually answers such a repeat. False
    raises the error instead (:class:`~datalab_ocr.APIConnectionError`,
    :class:`~datalab_ocr.APIResponseError` or :class:`~datalab_ocr.ServerError`).
    """

    max_attempts: int = 6
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.25
    max_retry_after: float = 120.0
    retry_unsure_submits: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("RetryPolicy.jitter must be between 0 and 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("RetryPolicy delays must be >= 0 and multiplier >= 1")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        base = _grown(self.initial_delay, self.multiplier, attempt - 1, self.max_delay)
        return base * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How often to ask whether a job is done, and for how long in all.

    With ``adaptive=True`` (the default) a client learns how long its jobs take per page and
    aims each job's first poll at its expected end, then steps by 10 % of the elapsed time
    (at least 0.5 s) after a miss; see the README's "Adaptive polling". The fixed schedule
    below serves until anything is learned, and always with ``adaptive=False``: the first check
    comes ``initial_delay`` seconds after the submit; the gaps then grow by ``multiplier`` up
    to ``max_delay``, each varied by up to ``jitter`` either way.

    ``timeout`` is the overall job deadline, from the submit (or the start of ``wait()``) to a
    complete result; it is separate from the per-request HTTP timeouts. When it passes the
    client raises :class:`~datalab_ocr.JobTimeoutError` with the request id, so the job can be
    resumed.
    """

    initial_delay: float = 1.0
    multiplier: float = 1.5
    max_delay: float = 10.0
    jitter: float = 0.1
    timeout: float = 900.0
    adaptive: bool = True

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("PollPolicy delays must be >= 0 and multiplier >= 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("PollPolicy.jitter must be between 0 and 1")
        if self.timeout <= 0:
            raise ValueError("PollPolicy.timeout must be positive")

    def delay(self, poll: int, rng: random.Random) -> float:
        """Seconds to wait before check number ``poll`` (1-based) of a job."""
        base = _grown(self.initial_delay, self.multiplier, poll - 1, self.max_delay)
        return base * (1.0 + self.jitter * (2.0 * rng.random() - 1.0))


DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
"""Per-request HTTP timeouts: 10 s to connect, 60 s for each read, write and pool wait."""
