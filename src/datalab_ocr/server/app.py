"""The HTTP side: a Starlette app speaking the hosted API's wire format.

Routes: ``POST /api/v1/ocr`` (submit), ``GET /api/v1/ocr/{request_id}`` (poll),
``OPTIONS /api/v1/ocr`` (the identity headers alone) and ``GET /_local/stats`` (counters for
benchmarks, not part of the hosted API). Every answer is built from the models in
:mod:`datalab_ocr._models`; every error is ``{"detail": ...}``.

Long poll (not part of the hosted API): ``GET /api/v1/ocr/{request_id}?wait=10`` answers as
soon as the job completes, or after the wait with ``processing``. The wait is capped at
``ServerConfig.long_poll_max``, which every answer advertises in ``X-Datalab-Long-Poll``
(:mod:`datalab_ocr.server.identity`); a client that goes away stops its wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from datalab_ocr._models import SubmitResponse
from datalab_ocr.server.bodylimit import BodyLimitMiddleware
from datalab_ocr.server.config import ServerConfig
from datalab_ocr.server.formats import UnsupportedFileError, detect_kind
from datalab_ocr.server.identity import IdentityHeadersMiddleware, server_identity
from datalab_ocr.server.jobs import Job, JobStore
from datalab_ocr.server.limits import RateLimiter, Stats, retry_after_header
from datalab_ocr.server.options import OptionsError, parse_options
from datalab_ocr.server.runner import JobRunner, store_upload

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_FORM_OVERHEAD = 1024 * 1024
"""Room for the multipart headers and the small form fields around the file."""


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class _Service:
    """The server's state and request handlers; one per app."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.stats = Stats()
        self.store = JobStore(ttl=config.result_ttl, cache_size=config.cache_size)
        self.runner = JobRunner(config, self.store, self.stats)
        self.closing = asyncio.Event()  # set when the server begins to stop
        self.limiter = (
            RateLimiter(config.rate_limit_requests, config.rate_limit_window)
            if config.rate_limit_requests is not None
            else None
        )

    def _refuse(self, request: Request) -> Response | None:
        """401 without the right API key, 429 over the rate limit; None to go on."""
        expected = self.config.api_key
        if expected is not None:
            given = request.headers.get("x-api-key", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                self.stats.unauthorized += 1
                return _error(401, "Invalid or missing API key (send it as X-API-Key)")
        if self.limiter is not None:
            wait = self.limiter.acquire(time.monotonic())
            if wait is not None:
                self.stats.rate_limited += 1
                headers = {"Retry-After": retry_after_header(wait)}
                return _error(429, self.limiter.message(), headers)
        return None

    def _busy(self) -> Response | None:
        """429 with Retry-After when every job slot is taken; None when there is room."""
        if not self.runner.full:
            return None
        self.stats.queue_full += 1
        headers = {"Retry-After": retry_after_header(self.runner.retry_after())}
        detail = (
            f"The server is busy: {self.config.capacity} jobs are already queued or "
            "running. Retry later."
        )
        return _error(429, detail, headers)

    async def submit(self, request: Request) -> Response:
        self.stats.requests += 1
        self.stats.submits += 1
        refused = self._refuse(request)
        if refused is not None:
            return refused
        busy = self._busy()
        if busy is not None:
            return busy

        async with request.form(max_files=4, max_fields=32, max_part_size=64 * 1024) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                upload = form.get("file.0")
            if not isinstance(upload, UploadFile):
                problem = {"loc": ["body", "file"], "msg": "Field required", "type": "missing"}
                return _error(422, [problem])
            fields = {key: value for key, value in form.items() if isinstance(value, str)}
            try:
                options = parse_options(fields)
            except OptionsError as exc:
                return _error(422, exc.detail)
            if "langs" in fields:
                logger.debug("ignoring the deprecated langs field %r", fields["langs"])
            stored = await store_upload(upload, limit=self.config.max_upload_bytes)

        accepted = False
        try:
            if stored.size > self.config.max_upload_bytes:
                limit_mb = self.config.max_upload_bytes / (1024 * 1024)
                return _error(413, f"File too large: this server accepts up to {limit_mb:g} MB")
            try:
                kind = detect_kind(stored.head, stored.filename, stored.content_type)
            except UnsupportedFileError as exc:
                return _error(400, str(exc))
            # Checked again: concurrent submits may have taken the last slots while this
            # upload was being read (the check above only spares reading it).
            busy = self._busy()
            if busy is not None:
                return busy
            job = self.runner.submit(stored, kind, options)
            accepted = True
        finally:
            if not accepted:
                stored.discard()

        check_url = str(request.url_for("check", request_id=job.request_id))
        answer = SubmitResponse(
            request_id=job.request_id,
            request_check_url=check_url,
            success=True,
            error=None,
            versions={},
        )
        return JSONResponse(answer.model_dump(mode="json"))

    async def check(self, request: Request) -> Response:
        self.stats.requests += 1
        self.stats.polls += 1
        refused = self._refuse(request)
        if refused is not None:
            return refused
        job = self.store.get(request.path_params["request_id"], time.monotonic())
        if job is None:
            return _error(
                404, "Request not found: the id is unknown or its result expired (1 hour)"
            )
        wait = _wait_seconds(request.query_params.get("wait"), self.config.long_poll_max)
        if wait is None:
            return _error(422, "wait must be a number of seconds, like ?wait=10")
        if job.result is None and wait > 0:
            await _until_done_or_gone(job, request, wait, self.closing)
        return JSONResponse(job.check_body())

    async def describe(self, request: Request) -> Response:
        # The identity headers come from the middleware; nothing else to say.
        return Response(status_code=204, headers={"Allow": "POST, OPTIONS"})

    async def local_stats(self, request: Request) -> Response:
        expected = self.config.api_key
        given = request.headers.get("x-api-key", "")
        if expected is not None and not hmac.compare_digest(given.encode(), expected.encode()):
            return _error(401, "Invalid or missing API key (send it as X-API-Key)")
        body: dict[str, Any] = self.stats.as_dict()
        body.update(
            active_jobs=self.runner.active,
            stored_jobs=len(self.store),
            workers=self.config.workers,
            workers_started=self.runner.pool.started,
            engine=self.config.engine,
        )
        return JSONResponse(body)


def _wait_seconds(raw: str | None, cap: float) -> float | None:
    """The long-poll wait asked for, capped; 0 without one; None when it is not a number."""
    if raw is None:
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        return None
    if not math.isfinite(wait):
        return None
    return min(max(0.0, wait), cap)


async def _until_done_or_gone(
    job: Job, request: Request, wait: float, closing: asyncio.Event
) -> None:
    """Wait up to ``wait`` s for ``job`` to complete, stopping early if the client leaves or
    the server begins to stop (so a shutdown does not sit out every long poll's wait).

    The waiters are tasks cancelled on the way out, so a disconnect or a timeout leaves
    nothing behind on the job's event.
    """
    waiters = {
        asyncio.ensure_future(job.done.wait()),
        asyncio.ensure_future(_disconnected(request)),
        asyncio.ensure_future(closing.wait()),
    }
    try:
        await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiters:
            task.cancel()
        for task in waiters:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, exc.detail, dict(exc.headers or {}))


class AppServer(uvicorn.Server):
    """uvicorn's server for :func:`create_app`: when it stops, the long polls waiting on it
    answer at once (``processing``), instead of holding the graceful shutdown for their wait.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        closing = getattr(getattr(self.config.app, "state", None), "closing", None)
        if isinstance(closing, asyncio.Event):
            closing.set()
        await super().shutdown(sockets)


def create_app(config: ServerConfig | None = None) -> Starlette:
    """A Starlette app serving the Datalab OCR API locally, configured by ``config``.

    Worker processes start with the first OCR job and stop when the app's lifespan ends.
    """
    config = config or ServerConfig()
    service = _Service(config)
    identity = server_identity(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await service.runner.aclose()

    app = Starlette(
        routes=[
            Route("/api/v1/ocr", service.submit, methods=["POST"], name="submit"),
            Route("/api/v1/ocr", service.describe, methods=["OPTIONS"], name="describe"),
            Route("/api/v1/ocr/{request_id}", service.check, methods=["GET"], name="check"),
            Route("/_local/stats", service.local_stats, methods=["GET"], name="stats"),
        ],
        middleware=[
            Middleware(IdentityHeadersMiddleware, identity=identity),
            Middleware(BodyLimitMiddleware, limit=config.max_upload_bytes + _FORM_OVERHEAD),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.closing = service.closing
    app.state.stats = service.stats
    app.state.identity = identity
    return app
