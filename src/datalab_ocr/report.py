"""The OCR report: one self-contained HTML file to look at what OCR made of each page.

::

    from datalab_ocr import DatalabClient
    from datalab_ocr.report import write_report

    with DatalabClient() as client:
        result = client.ocr("scan.pdf")
    write_report([(result, "scan.pdf")], "report.html")

Each page's picture (PDF pages rendered locally with PDFium, images read with Pillow) is
embedded as a WebP data URI, with every line's box drawn over it and coloured by confidence;
the page's text stands beside it. The page has a search box that marks matches on the picture
and in the text, a low-confidence filter with an adjustable threshold, and, given a chunk's
``bboxes`` (see :mod:`datalab_ocr._geometry`), the cited region. It needs no server and no
network: no external font, script or style. OCR text is untrusted and always escaped.

Boxes are placed in percentages of the page as the service saw it (``OCRPage.image_bbox``),
so they land on the text at any size of picture. Needs the ``report`` extra (Pillow and
pypdfium2; the ``server`` extra has them too).
"""

from __future__ import annotations

import html
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ._base_client import __version__
from ._geometry import PageSpan, decode_bboxes, line_spans
from ._models import OCRPage, OCRResult, TextLine
from ._page_images import NoPicture, PageImage, PageImageError, PageSource, page_images
from ._wording import counted

__all__ = [
    "DEFAULT_MAX_SIDE",
    "DEFAULT_THRESHOLD",
    "MAX_SIDE_LIMIT",
    "DocumentLike",
    "Highlight",
    "PageImageError",
    "ReportDocument",
    "render_report",
    "write_report",
]

logger = logging.getLogger("datalab_ocr")

DEFAULT_THRESHOLD = 0.75
"""Lines below this confidence count as low (the report's filter can change it)."""

DEFAULT_MAX_SIDE = 1400
MAX_SIDE_LIMIT = 16_383
"""The longest picture side WebP can encode."""
"""Longest side of an embedded page picture, in pixels: 40-190 kB a page in WebP, by how
much print it holds (a 117-page thesis makes an 11 MB report)."""

Highlight = str | Sequence[PageSpan] | Sequence[Mapping[str, Any]]
"""A citation: a chunk's ``bboxes`` metadata value (the JSON string, or its parsed list),
or :class:`~datalab_ocr._geometry.PageSpan` objects."""

_SHAPE_TOLERANCE = 0.03  # relative aspect-ratio difference before boxes may be off


@dataclass(frozen=True)
class ReportDocument:
    """One document of a report: its result, the file it came from, and what to show.

    ``source`` is the file that was OCRed (a path, or its bytes) and is only read locally to
    picture its pages. ``name`` is the heading (default: the file name). ``highlight`` is a
    citation to draw on this document's pages.
    """

    result: OCRResult
    source: PageSource
    name: str | None = None
    highlight: Highlight | None = None

    @property
    def display_name(self) -> str:
        """The heading of this document in the report."""
        if self.name is not None:
            return self.name
        if isinstance(self.source, bytes):
            return "document"
        return Path(self.source).name


DocumentLike = ReportDocument | tuple[OCRResult, PageSource]
"""What the report functions take for a document: a ``(result, source)`` pair or a
:class:`ReportDocument`."""


def render_report(
    documents: Iterable[DocumentLike],
    *,
    highlight: Highlight | None = None,
    title: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_side: int = DEFAULT_MAX_SIDE,
    failures: Sequence[tuple[str, str]] = (),
) -> str:
    """The HTML of a report on ``documents`` (``(result, source)`` pairs or
    :class:`ReportDocument` objects), in that order.

    ``highlight`` draws a chunk's ``bboxes`` on the only document (several documents: give
    each its own :attr:`ReportDocument.highlight`). ``threshold`` is the starting
    low-confidence threshold (0..1), ``max_side`` the longest side of the page pictures in
    pixels. ``failures`` lists ``(file, reason)`` of files that could not be OCRed, shown at
    the top. Raises :class:`PageImageError` for a source that cannot be read or lacks a page
    of its result, and :class:`~datalab_ocr._geometry.GeometryError` (a ``ValueError``) for
    a malformed ``highlight``.
    """
    head, parts, tail = _report(documents, highlight, title, threshold, max_side, failures)
    return head + "".join(part + "\n" for part in parts) + tail


def write_report(
    documents: Iterable[DocumentLike],
    path: str | Path,
    *,
    highlight: Highlight | None = None,
    title: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_side: int = DEFAULT_MAX_SIDE,
    failures: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write :func:`render_report` of ``documents`` to ``path`` (UTF-8); return the path.

    Pages are written as they are rendered, so the report is never held in memory whole (for
    a 352-page book, 222 MB at the peak instead of 572 MB). The file appears only once
    complete: an error or Ctrl-C leaves no half-written report, and any earlier file at
    ``path`` stays as it was.
    """
    head, parts, tail = _report(documents, highlight, title, threshold, max_side, failures)
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as out:
            out.write(head)
            for part in parts:
                out.write(part)
                out.write("\n")
            out.write(tail)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _report(
    documents: Iterable[DocumentLike],
    highlight: Highlight | None,
    title: str | None,
    threshold: float,
    max_side: int,
    failures: Sequence[tuple[str, str]],
) -> tuple[str, Iterator[str], str]:
    """The page around the body, and the body's parts, rendered as they are consumed. Every
    argument is checked here, before any page is rendered."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
    if not 16 <= max_side <= MAX_SIDE_LIMIT:
        raise ValueError(
            f"max_side must be from 16 to {MAX_SIDE_LIMIT} pixels (WebP's limit), not {max_side}"
        )
    items = [d if isinstance(d, ReportDocument) else ReportDocument(*d) for d in documents]
    if highlight is not None:
        if len(items) != 1:
            raise ValueError(
                f"highlight= applies to a single document, and there are {len(items)}: give "
                "each its own ReportDocument(highlight=...)"
            )
        items = [ReportDocument(items[0].result, items[0].source, items[0].name, highlight)]
    spans = [_spans(item.highlight) for item in items]
    if title is None:
        title = "OCR report: " + (
            items[0].display_name if len(items) == 1 else f"{len(items)} documents"
        )
    values = {
        "TITLE": html.escape(title),
        "THRESHOLD": f"{threshold:.2f}",
        "VERSION": html.escape(__version__),
    }
    # One pass over the template alone: nothing inserted (OCR text included) is ever read as
    # a placeholder.
    head, tail = _template().split("__BODY__")
    head, tail = (re.sub(r"__(TITLE|THRESHOLD|VERSION)__", lambda m: values[m[1]], part)
                  for part in (head, tail))  # fmt: skip
    return head, _body(items, spans, max_side, failures), tail


def _body(
    items: Sequence[ReportDocument],
    spans: Sequence[list[PageSpan]],
    max_side: int,
    failures: Sequence[tuple[str, str]],
) -> Iterator[str]:
    if failures:
        yield _failures(failures)
    if len(items) > 1:
        yield _contents(items)
    for number, (item, cited) in enumerate(zip(items, spans, strict=True)):
        yield from _document(number, item, cited, max_side)


def _template() -> str:
    return (resources.files("datalab_ocr") / "_report_template.html").read_text(encoding="utf-8")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _failures(failures: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f"<li><b>{_e(name)}</b>: {_e(reason)}</li>" for name, reason in failures)
    return (
        f'<section class="failed"><h2>{counted(len(failures), "file")} could not '
        f"be OCRed</h2><ul>{rows}</ul></section>"
    )


def _contents(items: Sequence[ReportDocument]) -> str:
    # Many documents: a list of them at the top, linking to each.
    entries = "".join(
        f'<li><a href="#d{number}">{_e(item.display_name)}</a> '
        f'<span class="meta">{counted(len(item.result.pages), "page")}</span></li>'
        for number, item in enumerate(items)
    )
    return f'<nav class="contents"><ol>{entries}</ol></nav>'


def _document(
    number: int, item: ReportDocument, spans: list[PageSpan], max_side: int
) -> Iterator[str]:
    result, name = item.result, item.display_name
    indices = [p.page_index if p.page_index is not None else i for i, p in enumerate(result.pages)]
    missing = sorted({s.page_index for s in spans} - set(indices))
    shown = ", ".join(f"page_index {m} (page {m + 1})" for m in missing)
    if missing:
        logger.warning("%s: the citation names %s, which the result does not hold; it is "
                       "not drawn there", name, shown)  # fmt: skip
    if item.highlight is not None and not spans:
        logger.warning("%s: the citation holds no region (a chunk whose lines had no box)", name)
    confidence = _mean([p.mean_confidence for p in result.pages])
    meta = [counted(len(result.pages), "page")]
    if confidence is not None:
        meta.append(f"mean confidence {confidence:.2f}")
    if result.request_id:
        meta.append(f"request {result.request_id}")
    note = (
        f'<p class="note">the citation names {html.escape(shown)}, which this result does not '
        "hold</p>"
        if missing
        else ""
    )
    yield (
        f'<section class="doc" id="d{number}"><h2>{_e(name)} '
        f'<span class="meta">{_e(" · ".join(meta))}</span></h2>{note}'
    )
    images = page_images(item.source, indices, name=name, max_side=max_side)
    misshapen: list[int] = []
    for index, page, image in zip(indices, result.pages, images, strict=True):
        yield _page(f"d{number}-p{index}", name, index, page, image, spans, misshapen)
    yield "</section>"
    if misshapen:
        # Once per document: a whole book of such pages is one problem, not 300.
        shown = ", ".join(map(str, misshapen[:10])) + (", ..." if len(misshapen) > 10 else "")
        logger.warning(
            "%s: on %s (page %s) the picture has another shape than the page the service read: "
            "boxes may be off",
            name, counted(len(misshapen), "page"), shown,
        )  # fmt: skip


def _spans(highlight: Highlight | None) -> list[PageSpan]:
    if highlight is None:
        return []
    if isinstance(highlight, str):
        return decode_bboxes(highlight)
    spans: list[Any] = list(highlight)
    if all(isinstance(span, PageSpan) for span in spans):
        return spans
    return decode_bboxes(spans)


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _page(
    anchor: str,
    name: str,
    index: int,
    page: OCRPage,
    image: PageImage | NoPicture,
    highlight: Sequence[PageSpan],
    misshapen: list[int],
) -> str:
    boxes = line_spans(page, index)
    cites = [s for s in highlight if s.page_index == index]
    notes = []
    width, height = page.width, page.height
    if isinstance(image, PageImage):
        aspect = f"{image.width} / {image.height}"
        if width and height and _differ(width / height, image.width / image.height):
            notes.append(
                f"the page picture ({image.width} x {image.height}) has another shape than "
                f"the page the service read ({width:g} x {height:g}): boxes may be off"
            )
            misshapen.append(index + 1)
        picture = (
            f'<img src="{image.data_uri}" alt="page {index + 1} of {_e(name)}" '
            'loading="lazy" decoding="async">'
        )
        sheet = f'<div class="sheet" style="aspect-ratio: {aspect}">{picture}'
    else:
        aspect = f"{width:g} / {height:g}" if width and height else "8.5 / 11"
        why = _e(f"no picture: {image.reason}")
        sheet = f'<div class="sheet noimg" data-why="{why}" style="aspect-ratio: {aspect}">'
    if page.text_lines and not any(boxes):
        notes.append("the result gives no usable line boxes (or page size): only its text")
    pairs = list(zip(page.text_lines, boxes, strict=True))
    drawn = [_box(i, line, box) for i, (line, box) in enumerate(pairs)]
    drawn += [_cite(span) for span in cites]
    listed = [
        _line(i, line, box is not None and any(_cited(box, c) for c in cites))
        for i, (line, box) in enumerate(pairs)
    ]
    if not page.text_lines:
        notes.append("no text found on this page")
    stats = [counted(len(page.text_lines), "line")]
    if page.mean_confidence is not None:
        stats.append(f"mean confidence {page.mean_confidence:.2f}")
    return (
        f'<article class="page" id="{anchor}" data-page-index="{index}">'
        f'<h3>Page {index + 1} <span class="meta">{_e(" · ".join(stats))}</span></h3>'
        + "".join(f'<p class="note">{_e(n)}</p>' for n in notes)
        + f'<div class="page-body">{sheet}{"".join(drawn)}</div>'
        f'<ol class="lines">{"".join(listed)}</ol></div></article>'
    )


def _differ(a: float, b: float) -> bool:
    return abs(a - b) / max(a, b) > _SHAPE_TOLERANCE


def _confidence(line: TextLine) -> float | None:
    value = line.confidence
    return value if value is not None and math.isfinite(value) else None


def _attrs(number: int, line: TextLine) -> str:
    value = _confidence(line)
    confidence = "" if value is None else f"{value:.4g}"
    source = {None: "o", True: "t", False: "d"}[line.original_text_good]
    return f'data-l="{number}" data-c="{confidence}" data-s="{source}"'


def _percent(span: PageSpan) -> str:
    return (
        f"left:{span.x0 * 100:.3f}%;top:{span.y0 * 100:.3f}%;"
        f"width:{(span.x1 - span.x0) * 100:.3f}%;height:{(span.y1 - span.y0) * 100:.3f}%"
    )


def _box(number: int, line: TextLine, span: PageSpan | None) -> str:
    if span is None:
        return ""
    return f'<div class="box" {_attrs(number, line)} style="{_percent(span)}"></div>'


def _cite(span: PageSpan) -> str:
    return f'<div class="cite" style="{_percent(span)}"><span>cited</span></div>'


def _cited(box: PageSpan, cite: PageSpan) -> bool:
    # A line belongs to the citation when its middle lies inside the cited region.
    x, y = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    return cite.x0 <= x <= cite.x1 and cite.y0 <= y <= cite.y1


def _line(number: int, line: TextLine, cited: bool) -> str:
    value = _confidence(line)
    shown = "-" if value is None else f"{value:.2f}"
    classes = "line cited" if cited else "line"
    return (
        f'<li class="{classes}" {_attrs(number, line)}><span class="c">{shown}</span>'
        f'<span class="t" dir="auto">{_e(line.text)}</span></li>'
    )
