"""What the caller asks of one OCR job, and the handle of a submitted job."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from ._exceptions import InvalidInputError
from ._inputs import Upload
from ._page_range import PageRange, format_page_range, parse_page_range
from ._wording import counted

__all__ = ["OCRJob", "OCROptions", "check_pages"]

logger = logging.getLogger("datalab_ocr")


@dataclass(frozen=True, slots=True)
class OCROptions:
    """Validated options of an OCR request.

    ``page_range`` holds the sorted 0-based page indices asked for; it overrides
    ``max_pages``, as on the service.
    """

    max_pages: int | None = None
    page_range: tuple[int, ...] | None = None
    skip_cache: bool = False
    langs: str | None = None

    @classmethod
    def build(
        cls,
        *,
        max_pages: int | None = None,
        page_range: PageRange | None = None,
        skip_cache: bool = False,
        langs: str | Sequence[str] | None = None,
    ) -> OCROptions:
        """Check the options as a caller gives them; raise :class:`InvalidInputError` if bad."""
        if max_pages is not None and (
            isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1
        ):
            raise InvalidInputError(
                f"max_pages must be a whole number of at least 1, not {max_pages!r}; leave it "
                f"out to OCR every page"
            )
        pages = parse_page_range(page_range) if page_range is not None else None
        if langs is not None:
            warnings.warn(
                "langs is deprecated and ignored by the Datalab OCR service; it is sent only "
                "for compatibility and can be left out",
                DeprecationWarning,
                stacklevel=_stacklevel_outside_package(),
            )
            langs = langs if isinstance(langs, str) else ",".join(langs)
        return cls(max_pages=max_pages, page_range=pages, skip_cache=skip_cache, langs=langs)

    def form_fields(self) -> dict[str, str]:
        """The form fields of the submit request, as the plain strings the service expects."""
        fields = {"skip_cache": "true" if self.skip_cache else "false"}
        if self.page_range is not None:
            fields["page_range"] = format_page_range(self.page_range)
        if self.max_pages is not None:
            fields["max_pages"] = str(self.max_pages)
        if self.langs is not None:
            fields["langs"] = self.langs
        return fields


def check_pages(options: OCROptions, upload: Upload) -> None:
    """Check ``page_range`` against the file's pages, where they are known before upload.

    A selection with no page of the file is refused (it would be uploaded, paid for, and
    then fail); pages past the end are dropped by the service, so they only get a warning.
    The count is known for PDFs whose page objects can be seen (:attr:`Upload.page_count`);
    otherwise nothing is checked and the service decides.
    """
    if options.page_range is None:
        return
    count = upload.page_count
    if count is None:
        return
    selection = format_page_range(options.page_range)
    pages = f"{counted(count, 'page')} (0-based: {_span(count)})"
    inside = [page for page in options.page_range if page < count]
    if not inside:
        raise InvalidInputError(
            f"page_range {selection!r} selects no page of {upload.display_name}, which has "
            f"{pages}; nothing was uploaded",
            filename=upload.display_name,
        )
    past = [page for page in options.page_range if page >= count]
    if past:
        logger.warning(
            "page_range %r asks for pages %s past the end of %s, which has %s; only %s will be "
            "OCRed",
            selection,
            format_page_range(past),
            upload.display_name,
            pages,
            format_page_range(inside),
        )


def _span(count: int) -> str:
    return "0" if count == 1 else f"0-{count - 1}"


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _stacklevel_outside_package() -> int:
    """The ``stacklevel`` that makes a warning point at the caller's own line.

    Counted from the function that calls this one (level 1) to the first frame outside
    this package: the entry points reach the warning through different depths (a method, a
    generator, a comprehension), so no fixed number is right for all of them.
    """
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _PACKAGE_DIR
    ):
        frame = frame.f_back
        level += 1
    return level


@dataclass(frozen=True, slots=True)
class OCRJob:
    """A submitted job: enough to wait for it, now or after a restart.

    The service keeps a result for one hour after completion. Store ``request_id`` (and the
    ``page_range`` that was asked for) to collect the result later with ``wait()``.
    ``expected_pages`` is the client's guess of the pages to OCR, used to time polls.
    ``long_poll`` is the longest check wait (seconds) the server offered, None for the hosted
    API; ``server_id`` and ``server_instance`` identify a local server and its run, so a job
    recorded for a server that has since stopped is not polled.
    """

    request_id: str
    check_url: str
    filename: str | None = None
    page_range: tuple[int, ...] | None = None
    max_pages: int | None = None
    expected_pages: int | None = None
    long_poll: float | None = None
    server_id: str | None = None
    server_instance: str | None = None
