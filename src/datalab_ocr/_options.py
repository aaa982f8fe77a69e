"""What the caller asks of one OCR job, and the handle of a submitted job."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from ._exceptions import InvalidInputError
from ._page_range import PageRange, format_page_range, parse_page_range

__all__ = ["OCRJob", "OCROptions"]


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
                stacklevel=3,
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
