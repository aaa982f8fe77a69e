"""One request budget for a whole Ray cluster: a named actor that hands out request slots.

An API key's rate limit holds however many machines spend it, so per-process limiters would
each believe they own the whole budget and the cluster would bounce off 429s. Instead one
actor keeps the sliding window (the same :class:`~datalab_ocr.RateLimiter` the clients use
in one process) and every worker's client asks it for a slot before each request, through
:class:`ClusterRateLimiter`, which a client takes as ``rate_limit=``.

The wait is computed on the actor's clock and slept on the worker's: a request leaves no
earlier than its slot (plus the return trip, which only delays it), so the window's
guarantee holds across machines whose clocks disagree. The limiter's ``margin`` (0.5 s)
absorbs the spread of those return trips.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import Any

import ray

from datalab_ocr._ratelimit import RateLimiter

__all__ = ["DEFAULT_LIMITER_NAME", "NAMESPACE", "ClusterRateLimiter", "cluster_rate_limit"]

logger = logging.getLogger(__name__)

NAMESPACE = "datalab_ocr"
"""The Ray namespace of the named actors, so jobs of one cluster can share a budget."""

DEFAULT_LIMITER_NAME = "datalab-ocr-rate-limit"
"""The limiter actor's name when none is given: one budget per cluster (one API key)."""

# How long a worker trusts the actor's last answer to "is the window full?": the poll
# planner asks before every poll, and a round trip per question would cost more than the
# answer is worth.
_SATURATION_TTL = 0.25
_CALL_TIMEOUT = 60.0

# The driver keeps every handle it got on each limiter: a named actor whose creating handle
# is dropped is collected, even while handles found by name live on, and the workers would
# find no limiter. Replacing the first handle with the one a second run found by name (a
# notebook calling read_ocr twice) killed the limiter under that run.
_KEPT: dict[str, list[Any]] = {}


class SlotKeeper:
    """The actor's body: a sliding window of request slots on the actor's clock."""

    def __init__(self, requests: int, window: float, margin: float) -> None:
        self._limiter = RateLimiter(requests, window, margin=margin)
        self._granted = 0
        with warnings.catch_warnings():
            # Ray's property reads a deprecated attribute of its own; the answer is right.
            warnings.simplefilter("ignore", DeprecationWarning)
            restarted = ray.get_runtime_context().was_current_actor_reconstructed
        if restarted:
            # A restarted keeper has forgotten the slots it handed out: assume the last
            # window was spent, so the restart cannot let a second full window through.
            now = time.monotonic()
            for _ in range(requests):
                self._limiter.reserve(now)
            logger.warning("the rate limiter actor restarted; waiting one window to be safe")

    def settings(self) -> tuple[int, float, float]:
        """``(requests, window, margin)``."""
        return self._limiter.requests, self._limiter.window, self._limiter.margin

    def reserve(self) -> float:
        """Book the next slot; seconds to wait for it."""
        self._granted += 1
        return self._limiter.reserve(time.monotonic())

    def saturated(self) -> bool:
        """Whether the next slot lies in the future."""
        return self._limiter.saturated(time.monotonic())

    def granted(self) -> int:
        """How many slots were handed out."""
        return self._granted


def cluster_rate_limit(
    requests: int = 200,
    window: float = 60.0,
    *,
    margin: float = 0.5,
    name: str = DEFAULT_LIMITER_NAME,
) -> Any:
    """The cluster's limiter actor called ``name``, created with these settings if absent.

    An existing actor of that name is reused (every job on the cluster then shares its
    budget); if its settings differ, a ``ValueError`` says so rather than silently
    spending another budget.
    """
    RateLimiter(requests, window, margin=margin)  # the same argument checks, on the driver
    actor: Any = (
        ray.remote(SlotKeeper)
        .options(
            name=name,
            namespace=NAMESPACE,
            get_if_exists=True,
            num_cpus=0,
            max_restarts=-1,
            # Requests are small and sequential; a queue of callers must not pile up threads.
            max_concurrency=1,
        )
        .remote(requests, window, margin)
    )
    found = ray.get(actor.settings.remote(), timeout=_CALL_TIMEOUT)
    if tuple(found) != (requests, float(window), float(margin)):
        raise ValueError(
            f"a rate limiter named {name!r} already runs on this cluster with "
            f"{found[0]} requests per {found[1]:g} s; use the same settings or another name"
        )
    _KEPT.setdefault(name, []).append(actor)
    return actor


class ClusterRateLimiter:
    """A client's ``rate_limit=`` that asks the cluster's limiter actor for every slot.

    Holds only the actor's name: it pickles to any worker and finds the actor there. Use it
    with the sync client (``reserve`` blocks for one actor round trip, about a millisecond).
    """

    def __init__(self, name: str = DEFAULT_LIMITER_NAME) -> None:
        self.name = name
        self._actor: Any = None
        self._saturated_at = -math.inf
        self._saturated = False

    def _handle(self) -> Any:
        if self._actor is None:
            self._actor = ray.get_actor(self.name, namespace=NAMESPACE)
        return self._actor

    def reserve(self, now: float) -> float:
        """Book a slot on the actor; seconds to wait for it, from now."""
        wait = float(ray.get(self._handle().reserve.remote(), timeout=_CALL_TIMEOUT))
        self._saturated_at = now
        self._saturated = wait > 0
        return wait

    def saturated(self, now: float) -> bool:
        """Whether the window is full, as the actor said within the last quarter second."""
        if now - self._saturated_at > _SATURATION_TTL:
            self._saturated = bool(
                ray.get(self._handle().saturated.remote(), timeout=_CALL_TIMEOUT)
            )
            self._saturated_at = now
        return self._saturated

    def granted(self) -> int:
        """How many slots the actor has handed out, to every worker."""
        return int(ray.get(self._handle().granted.remote(), timeout=_CALL_TIMEOUT))

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["name"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"ClusterRateLimiter(name={self.name!r})"
