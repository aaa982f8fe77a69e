"""datalab-ocr: the Datalab OCR API for RAG ingestion pipelines.

The clients submit a file, poll until the job completes and return a typed result:

    from datalab_ocr import DatalabClient

    with DatalabClient() as client:          # DATALAB_API_KEY from the environment
        result = client.ocr("report.pdf")
        print(result.pages[0].text)

Framework integrations live in :mod:`datalab_ocr.llama_index` and
:mod:`datalab_ocr.langchain` (extras); this package root imports neither framework.
"""

from ._async_client import AsyncDatalabClient
from ._base_client import __version__
from ._batch import DEFAULT_CONCURRENCY, BatchError, BatchItem, BatchResult, ErrorPolicy
from ._cache import ResultCache
from ._client import DatalabClient
from ._clock import Clock, SystemClock
from ._config import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    DatalabError,
    InvalidInputError,
    JobError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ServerError,
)
from ._geometry import GeometryError, PageSpan, decode_bboxes
from ._inputs import MAX_FILE_BYTES, FileInput
from ._models import PAGE_SEPARATOR, Glyph, OCRPage, OCRResult, SubmitResponse, TextLine
from ._options import OCRJob
from ._page_range import PageRange, format_page_range, parse_page_range
from ._policies import PollPolicy, RetryPolicy
from ._ratelimit import Limiter, RateLimiter

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONCURRENCY",
    "MAX_FILE_BYTES",
    "PAGE_SEPARATOR",
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncDatalabClient",
    "AuthenticationError",
    "BadRequestError",
    "BatchError",
    "BatchItem",
    "BatchResult",
    "Clock",
    "ConfigurationError",
    "DatalabClient",
    "DatalabError",
    "ErrorPolicy",
    "FileInput",
    "GeometryError",
    "Glyph",
    "InvalidInputError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "Limiter",
    "NotFoundError",
    "OCRJob",
    "OCRPage",
    "OCRResult",
    "PageRange",
    "PageSpan",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PollPolicy",
    "RateLimitError",
    "RateLimiter",
    "RequestValidationError",
    "ResultCache",
    "RetryPolicy",
    "ServerError",
    "SubmitResponse",
    "SystemClock",
    "TextLine",
    "__version__",
    "decode_bboxes",
    "format_page_range",
    "parse_page_range",
]
