"""The submit-and-poll job flow, written once and free of I/O.

A flow is a generator. It yields :class:`Send` ("send this request and give me the
outcome") and :class:`Sleep` ("wait this long"), and receives the outcome of each
``Send``: an ``httpx.Response`` or the ``httpx.TransportError`` that stopped it. The sync
and async clients are thin drivers around the same flows; tests step them by hand with no
network and no waiting.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
from pydantic import ValidationError

from ._clock import Clock
from ._config import is_hosted
from ._exceptions import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    DatalabError,
    JobFailedError,
    JobTimeoutError,
    status_error,
)
from ._inputs import Upload
from ._models import OCRPage, OCRResult, SubmitResponse
from ._options import OCRJob, OCROptions, check_pages
from ._planner import PollPlanner
from ._policies import (
    PollPolicy,
    RetryPolicy,
    is_name_resolution_error,
    is_retryable_status,
    parse_retry_after,
)
from ._ratelimit import Limiter
from ._server_info import ServerInfo, ServerKnowledge, read_server_info

__all__ = [
    "Endpoint",
    "Flow",
    "FlowSettings",
    "Outcome",
    "Send",
    "Sleep",
    "Step",
    "check_job",
    "expected_pages",
    "learn_server",
    "run_ocr",
    "submit_job",
    "wait_for_job",
]

logger = logging.getLogger("datalab_ocr")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    """Send one HTTP request to the service and pass back its outcome."""

    method: str
    url: str
    action: str
    upload: Upload | None = None
    form: dict[str, str] = field(default_factory=dict)
    read_timeout: float | None = None
    """At least this long for the answer (a long poll), beyond the client's read timeout."""


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before the next step, then pass back None."""

    seconds: float
    reason: str


Step = Send | Sleep
Outcome = httpx.Response | httpx.RequestError | None
Flow = Generator[Step, Outcome, T]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A submit-and-poll endpoint of the service.

    The OCR endpoint is the default; the flow knows nothing else about it, so another endpoint
    with the same pattern plugs in with its own path and result model.
    """

    path: str = "/api/v1/ocr"
    result_model: type[OCRResult] = OCRResult


@dataclass(frozen=True)
class FlowSettings:
    """Everything a flow needs to know, resolved once by the client."""

    base_url: httpx.URL
    retry: RetryPolicy
    polling: PollPolicy
    clock: Clock
    rng: random.Random = field(default_factory=random.Random)
    endpoint: Endpoint = field(default_factory=Endpoint)
    limiter: Limiter | None = None
    planner: PollPlanner | None = None
    server: ServerKnowledge = field(default_factory=ServerKnowledge)

    def __post_init__(self) -> None:
        if self.planner is None:
            object.__setattr__(self, "planner", PollPlanner(self.polling))

    def url(self, *segments: str) -> str:
        """An absolute URL below the base URL."""
        path = self.base_url.path.rstrip("/") + self.endpoint.path
        for segment in segments:
            path += "/" + segment
        return str(self.base_url.copy_with(path=path))


@dataclass(frozen=True, slots=True)
class _Context:
    """What errors and log lines say about the job in hand."""

    filename: str | None = None
    request_id: str | None = None
    check_url: str | None = None


def run_ocr(settings: FlowSettings, upload: Upload, options: OCROptions) -> Flow[OCRResult]:
    """Submit ``upload``, wait for the job and return its result."""
    deadline = settings.clock.monotonic() + settings.polling.timeout
    job = yield from submit_job(settings, upload, options, deadline=deadline)
    submitted_at = settings.clock.monotonic()
    return (yield from wait_for_job(settings, job, deadline=deadline, submitted_at=submitted_at))


def submit_job(
    settings: FlowSettings,
    upload: Upload,
    options: OCROptions,
    *,
    deadline: float | None = None,
) -> Flow[OCRJob]:
    """Upload a file and return the handle of the job the service started."""
    check_pages(options, upload)  # a selection outside the file is refused before upload
    context = _Context(filename=upload.display_name)
    request = Send(
        "POST", settings.url(), action="submit", upload=upload, form=options.form_fields()
    )
    (answer, server), _ = yield from _exchange(
        settings,
        request,
        context,
        lambda response: (_parse(response, SubmitResponse), read_server_info(response.headers)),
        deadline,
    )
    if answer.success is False:
        raise JobFailedError(
            f"the service refused the file: {answer.error or 'no reason given'}",
            filename=upload.display_name,
            request_id=answer.request_id,
        )
    request_id, check_url = _resolve_check_url(settings, answer, context)
    logger.info("submitted %s as request %s", upload.display_name, request_id)
    return OCRJob(
        request_id=request_id,
        check_url=check_url,
        filename=upload.display_name,
        page_range=options.page_range,
        max_pages=options.max_pages,
        expected_pages=expected_pages(upload, options),
        long_poll=server.long_poll,
        server_id=server.server_id,
        server_instance=server.instance,
    )


def expected_pages(upload: Upload, options: OCROptions) -> int:
    """The client's guess of the pages a job will OCR, before it is sent."""
    if options.page_range is not None:
        return len(options.page_range)
    pages = upload.page_hint
    if options.max_pages is not None:
        pages = min(pages, options.max_pages)
    return pages


def wait_for_job(
    settings: FlowSettings,
    job: OCRJob,
    *,
    deadline: float | None = None,
    check_first: bool = False,
    submitted_at: float | None = None,
) -> Flow[OCRResult]:
    """Poll a job until it completes and return its result.

    Raises :class:`JobFailedError` when the service reports failure and
    :class:`JobTimeoutError` when ``deadline`` (monotonic seconds; by default the polling
    policy's timeout from now) passes first. ``check_first`` checks at once, for resuming a
    job that may already be done. ``submitted_at`` (monotonic) is when the job was submitted,
    if known; only then does its duration teach the planner.

    A server that offers a long poll (``X-Datalab-Long-Poll`` on its answers; the local server
    does, the hosted API does not) is asked with ``?wait=`` at once and again after each
    ``processing``: it answers the moment the job completes, so nothing is guessed.
    """
    clock = settings.clock
    planner = settings.planner
    assert planner is not None
    start = clock.monotonic() if submitted_at is None else submitted_at
    if deadline is None:
        deadline = clock.monotonic() + settings.polling.timeout
    allowed = max(0.0, deadline - clock.monotonic())
    context = _Context(job.filename, job.request_id, job.check_url)
    long_poll = job.long_poll
    learned = submitted_at is not None and long_poll is None
    timer = planner.begin(job.expected_pages or 1, known_start=learned)
    finished_at: float | None = None
    last_sent = -math.inf
    try:
        while True:
            now = clock.monotonic()
            remaining = deadline - now
            wait = 0.0
            if remaining <= 0:
                if last_sent >= deadline:
                    raise _deadline_passed(allowed, job)
                # Out of time: one last look, as the job may have ended since the last poll.
            elif long_poll is not None:
                wait = min(long_poll, remaining)
            elif not (check_first and timer.polls == 0):
                limiter = settings.limiter
                throttled = limiter is not None and limiter.saturated(now)
                # Under a client rate limit (the hosted API's default) requests are budget:
                # aim first polls at the estimate. Without one, spend them on prompt notice.
                scarce = limiter is not None
                gap = (
                    start
                    + planner.next_poll(
                        timer, settings.rng, throttled=throttled, scarce=scarce, elapsed=now - start
                    )
                    - now
                )
                if gap > 0:
                    # While an estimate may arrive any moment, wake up to re-plan every
                    # quarter second instead of sleeping through the whole gap.
                    if planner.learning(timer):
                        gap = min(gap, _REPLAN_SECONDS)
                    yield Sleep(min(gap, remaining), "poll")
                    continue
            (result, server), sent_at = yield from _check(settings, job, context, deadline, wait)
            last_sent = sent_at + wait
            # When the answering request actually left: a rate-limit wait or a retry may
            # have come between the plan and the send, and the planner learns from the send.
            sent = sent_at - start
            if _is_finished(result, context):
                finished_at = sent if learned else None
                checks, pages = timer.polls + 1, len(result.pages)
                logger.info(
                    "request %s complete after %d check%s: %d page%s",
                    job.request_id,
                    checks,
                    "" if checks == 1 else "s",
                    pages,
                    "" if pages == 1 else "s",
                )
                return _finish(result, job)
            if server.long_poll is not None and long_poll is None:
                # A job resumed by id learns of the long poll from its first check.
                long_poll = server.long_poll
                learned = False
            planner.running(timer, sent)
    finally:
        planner.finished(timer, finished_at)


_REPLAN_SECONDS = 0.25


def _deadline_passed(allowed: float, job: OCRJob) -> JobTimeoutError:
    return JobTimeoutError(
        f"the job did not complete in the {allowed:.0f} s its deadline left it; it may still "
        f"finish: call wait() with its request id within an hour to collect the result "
        f"without paying again",
        filename=job.filename,
        request_id=job.request_id,
        check_url=job.check_url,
    )


def check_job(settings: FlowSettings, job: OCRJob) -> Flow[OCRResult]:
    """Check a job once; the answer may still be ``processing``."""
    context = _Context(job.filename, job.request_id, job.check_url)
    (result, _), _ = yield from _check(settings, job, context, None)
    if _is_finished(result, context):
        return _finish(result, job)
    return result


def _check(
    settings: FlowSettings,
    job: OCRJob,
    context: _Context,
    deadline: float | None,
    wait: float = 0.0,
) -> Flow[tuple[tuple[OCRResult, ServerInfo], float]]:
    """One check of ``job``; with ``wait`` > 0, a long poll of up to that many seconds."""
    if wait > 0:
        url = str(httpx.URL(job.check_url).copy_merge_params({"wait": f"{wait:.2f}"}))
        request = Send("GET", url, action="poll", read_timeout=wait + _LONG_POLL_SLACK)
    else:
        request = Send("GET", job.check_url, action="poll")
    model = settings.endpoint.result_model
    return (
        yield from _exchange(
            settings,
            request,
            context,
            lambda response: (_parse(response, model), read_server_info(response.headers)),
            deadline,
        )
    )


# The read timeout of a long poll exceeds its wait by this much, so a slow answer at the end
# of the wait is not taken for a dead connection.
_LONG_POLL_SLACK = 15.0


def learn_server(settings: FlowSettings) -> Flow[ServerInfo]:
    """What the server says about itself, asked once per client (``OPTIONS`` on the endpoint).

    The hosted API is never asked: it sends no identity, and its answers go on being keyed
    by the base URL. A server that does not answer, or answers without the headers, gets an
    empty :class:`ServerInfo`, which means the same.
    """
    knowledge = settings.server
    if is_hosted(settings.base_url):
        return ServerInfo()
    while not knowledge.known:
        if not knowledge.claim():
            yield Sleep(_ASK_WAIT, "another flow asks the server who it is")
            continue
        info: ServerInfo | None = None
        try:
            if settings.limiter is not None:
                wait = settings.limiter.reserve(settings.clock.monotonic())
                if wait > 0:
                    yield Sleep(wait, "rate limit")
            outcome = yield Send("OPTIONS", settings.url(), action="describe")
            if isinstance(outcome, httpx.Response):
                info = read_server_info(outcome.headers)
            else:
                logger.debug("the server did not say who it is: %s", outcome)
        finally:
            knowledge.learn(info)
        if info is None:
            # No answer (the submit will say why); keyed by the base URL this time.
            return ServerInfo()
    return knowledge.info


_ASK_WAIT = 0.02


_RUNNING = frozenset({"processing", "pending", "queued", "running", "in_progress"})
_FAILED = frozenset({"failed", "error", "errored"})


def _is_finished(result: OCRResult, context: _Context) -> bool:
    """True for a successful complete job; raises for a failed one; False while running.

    A complete job can still have failed, so ``success`` is read even then. Statuses other
    than ``processing`` and ``complete`` are not documented: one that comes with
    ``success: false`` (or reads like failure) is a failure, any other means still running.
    """
    status = result.status.lower()
    failed = result.success is False or status in _FAILED
    if status == "complete" and not failed:
        return True
    if status == "complete" or failed:
        raise JobFailedError(
            f"the service reported the job as failed: {result.error or 'no reason given'}",
            filename=context.filename,
            request_id=context.request_id,
            check_url=context.check_url,
        )
    if status not in _RUNNING:
        logger.debug("request %s has unknown status %r; still waiting", context.request_id, status)
    return False


def _finish(result: OCRResult, job: OCRJob) -> OCRResult:
    result.request_id = result.request_id or job.request_id
    assign_page_indices(result.pages, job.page_range, job.max_pages)
    return result


def assign_page_indices(
    pages: Sequence[OCRPage], page_range: Sequence[int] | None, max_pages: int | None
) -> None:
    """Set each page's 0-based index in the original document.

    Whether the service's ``page`` number is the page's number in the original document or its
    position in the selection is unconfirmed for ``page_range``. The client knows the pages it
    asked for, so: when every ``page - 1`` is a distinct page of the selection, those are the
    original indices; otherwise the pages are taken as the selection, in order.
    """
    selection = list(page_range) if page_range is not None else None
    if selection is None and max_pages is not None:
        selection = list(range(max_pages))
    numbers = [page.page - 1 if page.page is not None else None for page in pages]
    allowed = set(selection) if selection is not None else None
    original = len(set(numbers)) == len(numbers) and all(
        number is not None and number >= 0 and (allowed is None or number in allowed)
        for number in numbers
    )
    for position, page in enumerate(pages):
        if original:
            page.page_index = numbers[position]
        elif selection is not None and position < len(selection):
            page.page_index = selection[position]
        else:
            page.page_index = position


def _resolve_check_url(
    settings: FlowSettings, answer: SubmitResponse, context: _Context
) -> tuple[str, str]:
    request_id = answer.request_id
    check_url = answer.request_check_url
    if not request_id and check_url:
        request_id = httpx.URL(check_url).path.rstrip("/").rsplit("/", 1)[-1] or None
    if not request_id:
        raise APIResponseError(
            "the submit answer holds neither a request id nor a check URL",
            filename=context.filename,
        )
    own_url = settings.url(request_id)
    if not check_url:
        return request_id, own_url
    if not same_origin(httpx.URL(check_url), settings.base_url):
        # The API key goes only to the configured service; poll our own URL for the job.
        logger.warning(
            "the service gave a check URL on another origin (%s) for request %s; polling %s "
            "instead, so the API key is only sent to the configured base URL",
            _origin(httpx.URL(check_url)),
            request_id,
            own_url,
        )
        return request_id, own_url
    return request_id, check_url


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default_port = {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host, url.port or default_port)


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    """Whether two URLs share scheme, host and port (default ports made explicit)."""
    return _origin(a) == _origin(b)


def _exchange(
    settings: FlowSettings,
    request: Send,
    context: _Context,
    parse: Callable[[httpx.Response], T],
    deadline: float | None,
) -> Flow[tuple[T, float]]:
    """Send ``request`` until it succeeds, retrying what is worth retrying.

    Returns the parsed answer and when (monotonic) the request that got it was sent.
    """
    retry = settings.retry
    attempt = 0
    while True:
        attempt += 1
        if settings.limiter is not None:
            wait = settings.limiter.reserve(settings.clock.monotonic())
            if wait > 0:
                log = logger.info if wait >= _LOUD_RATE_WAIT else logger.debug
                log("rate limit: %s waits %.1f s", request.action, wait)
                yield Sleep(wait, "rate limit")
        sent_at = settings.clock.monotonic()
        outcome = yield request
        retry_after: float | None = None
        error: DatalabError
        if isinstance(outcome, httpx.Response):
            if outcome.is_success:
                try:
                    return parse(outcome), sent_at
                except APIResponseError as bad_body:
                    error = _with_context(bad_body, context)
                    retryable = request.action != "submit" or retry.retry_unsure_submits
            else:
                error = status_error(
                    outcome,
                    action=request.action,
                    filename=context.filename,
                    request_id=context.request_id,
                    check_url=context.check_url,
                )
                retryable = is_retryable_status(outcome.status_code) and (
                    request.action != "submit"
                    or retry.retry_unsure_submits
                    or outcome.status_code not in _UNSURE_STATUSES
                )
                retry_after = parse_retry_after(
                    outcome.headers.get("Retry-After"), now=settings.clock.wall()
                )
        elif isinstance(outcome, httpx.DecodingError):
            # The answer came but its body could not be decoded: as with a body that is not
            # JSON, the request reached the service.
            error = _with_context(
                APIResponseError(f"the service's answer could not be decoded: {outcome}"),
                context,
            )
            error.__cause__ = outcome
            retryable = request.action != "submit" or retry.retry_unsure_submits
        elif isinstance(outcome, httpx.TransportError):
            error = _connection_error(outcome, request, context)
            retryable = not is_name_resolution_error(outcome) and (
                request.action != "submit"
                or retry.retry_unsure_submits
                or _surely_not_received(outcome)
            )
        elif isinstance(outcome, httpx.RequestError):
            error = _connection_error(outcome, request, context)
            retryable = False
        else:
            raise TypeError(f"a Send step needs a response or a transport error, not {outcome!r}")
        if not retryable or attempt >= retry.max_attempts:
            raise error
        delay = retry.delay(attempt, retry_after, settings.rng)
        if deadline is not None and settings.clock.monotonic() + delay > deadline:
            raise error
        logger.warning(
            "%s of %s failed (attempt %d of %d): %s; retrying in %.1f s",
            request.action,
            context.filename or context.request_id or request.url,
            attempt,
            retry.max_attempts,
            error.message,
            delay,
        )
        yield Sleep(delay, f"retry {request.action}")


_LOUD_RATE_WAIT = 5.0

# Answers that may come after the service did the work (a timeout or a gateway giving up on
# an upstream that went on), unlike 429, 503 and 529, which refuse the request up front.
_UNSURE_STATUSES = frozenset({408, 500, 502, 504})


def _surely_not_received(error: httpx.TransportError) -> bool:
    """Whether a failed request surely never reached the service (so no job was started).

    A connection that was never made, or an upload cut off before its end, cannot have started
    a job. A lost answer after a complete upload might have.
    """
    return isinstance(
        error,
        (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.PoolTimeout,
            httpx.WriteError,
            httpx.WriteTimeout,
        ),
    )


def _connection_error(
    error: httpx.RequestError, request: Send, context: _Context
) -> APIConnectionError:
    kind = APITimeoutError if isinstance(error, httpx.TimeoutException) else APIConnectionError
    what = "timed out" if kind is APITimeoutError else "got no answer"
    detail = str(error) or type(error).__name__
    host = httpx.URL(request.url).host
    message = f"{request.action} to {host} {what} ({type(error).__name__}: {detail})"
    if is_name_resolution_error(error):
        message = (
            f"{request.action} failed: the host name {host!r} does not resolve ({detail}); "
            f"check the base URL (base_url or DATALAB_BASE_URL) and the network connection"
        )
    elif _refused(error):
        port = httpx.URL(request.url).port
        where = f"{host}:{port}" if port else host
        message += (
            f"; nothing listens at {where}: is the server running, and is the base URL "
            "(base_url or DATALAB_BASE_URL) right?"
        )
    result = kind(
        message,
        filename=context.filename,
        request_id=context.request_id,
        check_url=context.check_url,
    )
    result.__cause__ = error
    return result


def _refused(error: httpx.RequestError) -> bool:
    """Whether the connection was refused: the host answered, but nothing listens there."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return True
        cause = cause.__cause__ or cause.__context__
    return isinstance(error, httpx.ConnectError) and "connection refused" in str(error).lower()


def _with_context(error: DatalabError, context: _Context) -> DatalabError:
    error.filename = error.filename or context.filename
    error.request_id = error.request_id or context.request_id
    error.check_url = error.check_url or context.check_url
    return error


M = TypeVar("M", SubmitResponse, OCRResult)


def _parse(response: httpx.Response, model: type[M]) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as error:
        snippet = response.text[:120].replace("\n", " ")
        raise APIResponseError(
            f"the service answered HTTP {response.status_code} with a body that is not the "
            f"expected JSON ({error.error_count()} problems; body starts {snippet!r})"
        ) from error
