"""What a local server says about itself in its response headers, and what a client learned.

The local server (``datalab-ocr serve``, ``local=True``) sends three headers on every answer;
the hosted API sends none, so everything here is None for it and the client behaves as it
always did:

* ``X-Datalab-Server-Id``: what makes results equal (engine, versions, settings). The result
  cache keys local results by it instead of the base URL, whose port changes with every
  embedded server.
* ``X-Datalab-Server-Instance``: this run of the server; jobs recorded for another run are gone.
* ``X-Datalab-Long-Poll``: the longest ``?wait=`` (seconds) a check accepts.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ServerInfo", "ServerKnowledge", "read_server_info"]

SERVER_ID_HEADER = "X-Datalab-Server-Id"
INSTANCE_HEADER = "X-Datalab-Server-Instance"
LONG_POLL_HEADER = "X-Datalab-Long-Poll"

_MAX_ID_LENGTH = 128


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """A server's identity headers; every field None when it sent none."""

    server_id: str | None = None
    instance: str | None = None
    long_poll: float | None = None


def read_server_info(headers: Mapping[str, str]) -> ServerInfo:
    """The identity headers of one answer; malformed values count as absent."""
    return ServerInfo(
        server_id=_token(headers.get(SERVER_ID_HEADER)),
        instance=_token(headers.get(INSTANCE_HEADER)),
        long_poll=_seconds(headers.get(LONG_POLL_HEADER)),
    )


def _token(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > _MAX_ID_LENGTH or not value.isprintable():
        return None
    return value


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return seconds


class ServerKnowledge:
    """What one client learned about its server: asked once, shared by every flow.

    ``claim`` lets exactly one flow ask while the others wait for its answer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asking = False
        self.known = False
        self.info = ServerInfo()
        self.swept = False

    def claim(self) -> bool:
        """True for the one flow that should ask now; False while another one asks."""
        with self._lock:
            if self.known or self._asking:
                return False
            self._asking = True
            return True

    def learn(self, info: ServerInfo | None) -> None:
        """Record the answer (None: the question failed, ask again next time)."""
        with self._lock:
            self._asking = False
            if info is not None:
                self.info = info
                self.known = True

    def claim_sweep(self) -> bool:
        """True once per client: the flow that forgets recorded jobs of stopped servers."""
        with self._lock:
            if self.swept:
                return False
            self.swept = True
            return True
