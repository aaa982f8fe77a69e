"""The submit form's options: parsing, validation and page selection. No I/O.

Validation problems are collected as ``{"loc", "msg", "type"}`` items, the shape of the hosted
API's 422 ``detail`` list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "JobOptions",
    "OptionsError",
    "pages_past_end",
    "parse_options",
    "parse_page_range",
    "select_pages",
]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class OptionsError(ValueError):
    """The form fields are invalid; ``detail`` is the 422 ``detail`` list."""

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(item["msg"]) for item in detail))
        self.detail = detail


@dataclass(frozen=True)
class JobOptions:
    """The options of one job: which pages to process and whether to bypass the cache."""

    max_pages: int | None = None
    page_range: tuple[int, ...] | None = None
    skip_cache: bool = False

    def cache_key_part(self) -> str:
        """The options that change a result, as a stable string for the result cache."""
        pages = ",".join(map(str, self.page_range)) if self.page_range is not None else ""
        return f"max_pages={self.max_pages};page_range={pages}"


def _problem(field: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": msg, "type": kind}


def parse_page_range(text: str) -> tuple[int, ...]:
    """Parse a 0-based page range like ``"0,2-4"`` into sorted, unique page indices.

    Raises ``ValueError`` with a readable message when the text is not a valid range.
    """
    pages: set[int] = set()
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            raise ValueError(f"empty item in page range {text!r}")
        start_text, dash, end_text = part.partition("-")
        try:
            start = int(start_text)
            end = int(end_text) if dash else start
        except ValueError:
            raise ValueError(f"{part!r} is not a page number or a range like 2-4") from None
        if start < 0 or end < 0:
            raise ValueError(f"page numbers are 0-based and cannot be negative: {part!r}")
        if end < start:
            raise ValueError(f"range {part!r} ends before it starts")
        pages.update(range(start, end + 1))
    return tuple(sorted(pages))


def parse_options(form: dict[str, str]) -> JobOptions:
    """Build :class:`JobOptions` from the form's plain string fields (``langs`` is ignored).

    Raises :class:`OptionsError` listing every invalid field.
    """
    problems: list[dict[str, Any]] = []
    max_pages: int | None = None
    page_range: tuple[int, ...] | None = None
    skip_cache = False

    raw_max = form.get("max_pages", "").strip()
    if raw_max and raw_max.lower() not in {"none", "null"}:
        try:
            max_pages = int(raw_max)
        except ValueError:
            problems.append(_problem("max_pages", "Input should be a valid integer", "int_parsing"))
        else:
            if max_pages < 1:
                problems.append(
                    _problem("max_pages", "Input should be greater than 0", "greater_than")
                )

    raw_range = form.get("page_range", "").strip()
    if raw_range and raw_range.lower() not in {"none", "null"}:
        try:
            page_range = parse_page_range(raw_range)
        except ValueError as exc:
            problems.append(_problem("page_range", f"Invalid page range: {exc}", "value_error"))

    raw_skip = form.get("skip_cache", "").strip().lower()
    if raw_skip in _TRUE:
        skip_cache = True
    elif raw_skip not in _FALSE:
        problems.append(_problem("skip_cache", "Input should be a valid boolean", "bool_parsing"))

    if problems:
        raise OptionsError(problems)
    return JobOptions(max_pages=max_pages, page_range=page_range, skip_cache=skip_cache)


def select_pages(options: JobOptions, page_count: int) -> list[int]:
    """The 0-based pages of a ``page_count``-page document that the job processes.

    ``page_range`` overrides ``max_pages``; indices past the end of the document are dropped.
    """
    if options.page_range is not None:
        return [index for index in options.page_range if index < page_count]
    limit = page_count if options.max_pages is None else min(options.max_pages, page_count)
    return list(range(limit))


def pages_past_end(options: JobOptions, page_count: int) -> list[int]:
    """The pages ``page_range`` asks for beyond the end of a ``page_count``-page document.

    They are dropped (as the client warns before upload); a job left with no page fails.
    """
    if options.page_range is None:
        return []
    return [index for index in options.page_range if index >= page_count]
