"""The settings of the local server, resolved once when the app is built."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from datalab_ocr.server.layout import DEFAULT_MAX_RENDER_PIXELS

__all__ = ["API_KEY_ENV", "DEFAULT_MAX_UPLOAD_BYTES", "ENGINES", "ServerConfig"]

API_KEY_ENV = "DATALAB_SERVER_API_KEY"
"""The environment variable ``datalab-ocr serve`` reads the key it requires from. Not the
client's ``DATALAB_API_KEY``: a shell holding a hosted key must not make it a local password."""

DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024
"""The hosted API's file size limit: 200 MB."""

ENGINES = ("tesseract", "rapidocr", "none")
"""OCR engines: ``tesseract`` (default), ``rapidocr`` (extra), ``none`` (synthetic pages)."""


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


@dataclass(frozen=True)
class ServerConfig:
    """Everything that changes how the local server behaves.

    The defaults mirror the hosted API where it documents a number (200 MB uploads, one hour
    of result retention). ``latency`` and ``page_latency`` (seconds) hold every job in
    ``processing`` for at least ``latency + page_latency * pages``; with ``engine="none"`` no
    OCR runs at all and each requested page comes back as one synthetic line, so load tests
    of thousands of jobs stay cheap. ``rate_limit_requests`` per ``rate_limit_window`` seconds
    counts submits and polls alike, as the hosted API is assumed to. Pages are rendered within
    ``max_render_pixels`` (bigger pages at a lower resolution, down to ``layout.MIN_OCR_DPI``).
    ``long_poll_max`` is the longest wait (seconds) a check accepts as ``?wait=``; 0 turns
    long polling off.
    """

    api_key: str | None = field(default=None, repr=False)  # never in a log line or traceback
    engine: str = "tesseract"
    workers: int = _default_workers()
    queue_size: int = 64
    result_ttl: float = 3600.0
    latency: float = 0.0
    page_latency: float = 0.0
    rate_limit_requests: int | None = None
    rate_limit_window: float = 60.0
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_image_pixels: int = 100_000_000
    max_render_pixels: int = DEFAULT_MAX_RENDER_PIXELS
    cache_size: int = 32
    render_scale: float = 2.0
    office_timeout: float = 120.0
    long_poll_max: float = 20.0

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.queue_size < 0:
            raise ValueError("queue_size must not be negative")
        if self.rate_limit_requests is not None and self.rate_limit_requests < 1:
            raise ValueError("rate_limit_requests must be at least 1 (or None for no limit)")
        if self.rate_limit_window <= 0 or self.result_ttl <= 0:
            raise ValueError("rate_limit_window and result_ttl must be positive")
        if self.max_render_pixels < 1_000_000:
            raise ValueError("max_render_pixels must be at least 1000000 (a page at 100 dpi)")
        if self.latency < 0 or self.page_latency < 0:
            raise ValueError("latency and page_latency must not be negative")
        if not 0 <= self.long_poll_max <= 300:
            raise ValueError("long_poll_max must be between 0 and 300 seconds")

    @property
    def capacity(self) -> int:
        """How many jobs may be unfinished at once: the running ones plus the queue."""
        return self.workers + self.queue_size

    @property
    def render_dpi(self) -> int:
        """The resolution pages are rendered at (72 dpi times ``render_scale``)."""
        return round(72 * self.render_scale)
