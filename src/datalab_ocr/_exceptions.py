"""Every error this library raises.

All of them derive from :class:`DatalabError`, so one ``except DatalabError`` catches
anything the library decided to refuse or could not finish. Where they are known, errors
carry the file name, the request id and the check URL, so a failed batch item can be found,
reported and resumed.

::

    DatalabError
    ├── InvalidInputError            bad file or option, refused before anything is uploaded
    ├── ConfigurationError           no API key for the hosted API, bad base URL
    ├── APIError                     talking to the service went wrong
    │   ├── APIConnectionError       no answer: connection refused, reset, dropped
    │   │   └── APITimeoutError      no answer within the HTTP timeouts
    │   ├── APIResponseError         an answer that is not the documented JSON
    │   └── APIStatusError           an HTTP error status; ``status_code`` and ``detail``
    │       ├── BadRequestError          400
    │       ├── AuthenticationError      401
    │       ├── PermissionDeniedError    403
    │       ├── NotFoundError            404 (unknown or expired request id)
    │       ├── PayloadTooLargeError     413
    │       ├── RequestValidationError   422
    │       ├── RateLimitError           429
    │       └── ServerError              408, 5xx, 529
    └── JobError                     the job was accepted but gave no result
        ├── JobFailedError           the service reported ``success: false``
        └── JobTimeoutError          the overall job deadline passed; resume with the request id

Messages never contain the API key: nothing here is built from request headers.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "DatalabError",
    "InvalidInputError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestValidationError",
    "ServerError",
]


class DatalabError(Exception):
    """Base class of every error raised by datalab-ocr.

    ``filename``, ``request_id`` and ``check_url`` are set where they are known; the batch
    APIs fill in the file name of the item that failed.
    """

    def __init__(
        self,
        message: str,
        *,
        filename: str | None = None,
        request_id: str | None = None,
        check_url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.filename = filename
        self.request_id = request_id
        self.check_url = check_url

    def __str__(self) -> str:
        context = []
        if self.filename is not None:
            context.append(f"file {self.filename!r}")
        if self.request_id is not None:
            context.append(f"request id {self.request_id!r}")
        if not context:
            return self.message
        return f"{self.message} [{', '.join(context)}]"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the context attributes across pickling (multiprocessing, result queues).
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[DatalabError], state: dict[str, Any]) -> DatalabError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class InvalidInputError(DatalabError, ValueError):
    """A file or an option the service would refuse, caught before anything is uploaded."""


class ConfigurationError(DatalabError, ValueError):
    """The client cannot be built as configured (for example, no API key for the hosted API)."""


class APIError(DatalabError):
    """Talking to the service went wrong."""


class APIConnectionError(APIError):
    """No answer came back: the connection was refused, reset or dropped."""


class APITimeoutError(APIConnectionError):
    """No answer came back within the HTTP timeouts (not the overall job deadline)."""


class APIResponseError(APIError):
    """The service answered with a body that is not the documented JSON."""


class APIStatusError(APIError):
    """The service answered with an HTTP error status.

    ``detail`` is the ``detail`` member of the error body when there is one (a string, or
    for 422 a list of validation problems), otherwise the start of the body text.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        detail: Any = None,
        filename: str | None = None,
        request_id: str | None = None,
        check_url: str | None = None,
    ) -> None:
        super().__init__(message, filename=filename, request_id=request_id, check_url=check_url)
        self.status_code = status_code
        self.detail = detail


class BadRequestError(APIStatusError):
    """400: the service refused the request (for example an unsupported or empty file)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or invalid."""


class PermissionDeniedError(APIStatusError):
    """403: the account may not use the API (no active subscription, payment failed)."""


class NotFoundError(APIStatusError):
    """404: the request id is unknown, or its result expired (one hour after completion)."""


class PayloadTooLargeError(APIStatusError):
    """413: the file is larger than the service accepts."""


class RequestValidationError(APIStatusError):
    """422: the service rejected the form fields; ``detail`` lists the problems."""


class RateLimitError(APIStatusError):
    """429: too many requests, still refused after the configured retries."""


class ServerError(APIStatusError):
    """408, 5xx or 529: the service failed or was overloaded, after the configured retries."""


class JobError(DatalabError):
    """The service accepted the file but produced no result."""


class JobFailedError(JobError):
    """The service reported the job as failed (``success: false``); the message is its own."""


class JobTimeoutError(JobError):
    """The overall job deadline passed before the job completed.

    The job may still finish: pass ``request_id`` to ``wait()`` within the service's one-hour
    retention to collect the result without paying for it again.
    """


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    422: RequestValidationError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The error class for an HTTP error status."""
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if status_code == 408 or status_code >= 500:
        return ServerError
    return APIStatusError


def error_detail(response: httpx.Response) -> Any:
    """The ``detail`` of an error body, or the start of the body text when it is not JSON."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or None
    if isinstance(body, dict) and "detail" in body:
        return body["detail"]
    return body


def describe_detail(detail: Any) -> str:
    """A one-line, human-readable form of an error ``detail``."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(part) for part in item.get("loc", []))
                msg = item.get("msg", "")
                parts.append(f"{loc}: {msg}" if loc else str(msg))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return "" if detail is None else str(detail)


def status_error(
    response: httpx.Response,
    *,
    action: str,
    filename: str | None = None,
    request_id: str | None = None,
    check_url: str | None = None,
) -> APIStatusError:
    """Map an error response to the error class of its status family."""
    detail = error_detail(response)
    described = describe_detail(detail)
    message = f"{action} failed with HTTP {response.status_code}"
    if described:
        message = f"{message}: {described}"
    hint = _HINTS.get(response.status_code)
    if hint:
        message = f"{message}. {hint}"
    return status_error_class(response.status_code)(
        message,
        status_code=response.status_code,
        detail=detail,
        filename=filename,
        request_id=request_id,
        check_url=check_url,
    )


_HINTS = {
    401: "Check the API key (argument api_key or DATALAB_API_KEY)",
    403: "Check the account's subscription and payment status",
    404: "Results are deleted one hour after completion; submit the file again",
    413: "The service accepts files up to 200 MB; split the document or use page_range",
}
