"""The ``page_range`` option: 0-based pages and ranges, comma separated (``"0,2-4"``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ._exceptions import InvalidInputError

__all__ = ["MAX_PAGES_PER_REQUEST", "PageRange", "format_page_range", "parse_page_range"]

MAX_PAGES_PER_REQUEST = 7000
"""The most pages the service processes in one request."""

PageRange = str | Sequence[int]
"""What ``page_range`` accepts: ``"0,2-4"`` or a sequence of 0-based page indices."""

_PART = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_page_range(value: PageRange) -> tuple[int, ...]:
    """The sorted, distinct 0-based page indices that ``value`` selects.

    Raises :class:`InvalidInputError` for an empty selection, negative numbers, a reversed
    range such as ``"4-2"``, or anything that is not digits, dashes and commas.
    """
    if isinstance(value, str):
        pages = _parse_text(value)
    elif isinstance(value, Sequence):
        pages = _parse_indices(value)
    else:
        raise InvalidInputError(
            f"page_range must be a string like '0,2-4' or a list of 0-based page numbers, "
            f"not {type(value).__name__}"
        )
    if len(pages) > MAX_PAGES_PER_REQUEST:
        raise InvalidInputError(
            f"page_range selects {len(pages)} pages; the service takes at most "
            f"{MAX_PAGES_PER_REQUEST} per request: split the document into several requests"
        )
    return tuple(sorted(pages))


def _parse_text(text: str) -> set[int]:
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise InvalidInputError(
            f"page_range {text!r} is empty or has an empty item; expected 0-based pages and "
            f"ranges separated by commas, like '0,2-4'"
        )
    pages: set[int] = set()
    for part in parts:
        match = _PART.match(part)
        if match is None:
            raise InvalidInputError(
                f"page_range item {part!r} in {text!r} is not a page or a range; expected "
                f"0-based, non-negative numbers like '3' or '2-4'"
            )
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) is not None else start
        if end < start:
            raise InvalidInputError(
                f"page_range item {part!r} in {text!r} runs backwards; write it as '{end}-{start}'"
            )
        if end - start >= MAX_PAGES_PER_REQUEST:
            raise InvalidInputError(
                f"page_range item {part!r} selects more than {MAX_PAGES_PER_REQUEST} pages, "
                f"the most the service takes per request"
            )
        pages.update(range(start, end + 1))
    return pages


def _parse_indices(values: Sequence[object]) -> set[int]:
    if not values:
        raise InvalidInputError("page_range is an empty list; leave it out to OCR every page")
    pages: set[int] = set()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(
                f"page_range holds {value!r}; a list must hold 0-based page numbers (ints)"
            )
        if value < 0:
            raise InvalidInputError(
                f"page_range holds {value}; page numbers are 0-based and cannot be negative"
            )
        pages.add(value)
    return pages


def format_page_range(pages: Iterable[int]) -> str:
    """The compact text form of 0-based page indices: ``[0, 2, 3, 4]`` gives ``"0,2-4"``."""
    ordered = sorted(set(pages))
    parts: list[str] = []
    index = 0
    while index < len(ordered):
        start = end = ordered[index]
        while index + 1 < len(ordered) and ordered[index + 1] == end + 1:
            index += 1
            end = ordered[index]
        parts.append(str(start) if start == end else f"{start}-{end}")
        index += 1
    return ",".join(parts)
