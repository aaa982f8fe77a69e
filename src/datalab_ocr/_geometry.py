"""Where text stands on its page, as fractions of the page: chunk geometry for citations.

Line boxes come from the service in pixels of the rendered page image (origin top-left);
``OCRPage.image_bbox`` is that image. Here they become **page fractions**: ``0..1`` on both
axes, origin at the top-left corner of the page *as displayed* (the local server reports a
``/Rotate`` page's lines in its displayed orientation, and its ``image_bbox`` is the displayed
size), so ``x0 * width`` and ``y0 * height`` of any rendering of the page land on the text.

Two values travel in document metadata, both JSON strings so metadata stays flat:

- ``bboxes`` (and ``line_bboxes``): a list of :class:`PageSpan`, ``{"page_index", "x0",
  "y0", "x1", "y1"}``. :func:`encode_bboxes` writes one, :func:`decode_bboxes` reads and
  validates one. This format is a public contract (vector stores keep it for years): keys
  and meaning do not change.
- the **line map** of a page record (key :data:`LINE_MAP_KEY`): each line's character range
  in the record's text and its fractional box, compact, so a splitter can tell which lines
  a chunk holds. :func:`build_line_map` writes it, :func:`decode_line_map` reads it.

Nothing here guesses: a line without a usable box, or a page without ``image_bbox``, has no
box (``None``), and fractions are rounded outwards so a box always contains its text.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._models import OCRPage

__all__ = [
    "BBOXES_COMPLETE_KEY",
    "BBOXES_KEY",
    "LINE_BBOXES_KEY",
    "LINE_MAP_KEY",
    "GeometryError",
    "LineMap",
    "MappedLine",
    "PageSpan",
    "build_line_map",
    "decode_bboxes",
    "decode_line_map",
    "encode_bboxes",
    "line_spans",
    "normalize_box",
    "union_by_page",
]

BBOXES_KEY = "bboxes"
"""Metadata key of a chunk's per-page regions (a JSON string, see :func:`decode_bboxes`)."""

LINE_BBOXES_KEY = "line_bboxes"
"""Metadata key of a chunk's line boxes, when asked for (same format as ``bboxes``)."""

BBOXES_COMPLETE_KEY = "bboxes_complete"
"""Metadata key: ``True`` when every line of a chunk had a box, ``False`` when some did not
(their regions are missing from ``bboxes``)."""

LINE_MAP_KEY = "datalab_line_map"
"""Metadata key of a page record's line map (a JSON string, see :func:`decode_line_map`)."""

_SCALE = 10_000  # 4 decimals: 0.1 pixel on a 1000-pixel page
_SLACK = 1e-6
_LINE_MAP_VERSION = 1
_SPAN_KEYS = ("page_index", "x0", "y0", "x1", "y1")


class GeometryError(ValueError):
    """A ``bboxes`` or line-map value that is not what this module writes."""


@dataclass(frozen=True, slots=True)
class PageSpan:
    """A region of one page: ``[x0, x1] x [y0, y1]`` in page fractions (0..1), origin at
    the top-left of the page as displayed; ``page_index`` is 0-based in the document."""

    page_index: int
    x0: float
    y0: float
    x1: float
    y1: float

    def to_dict(self) -> dict[str, int | float]:
        """The JSON object of this span."""
        return {"page_index": self.page_index, "x0": self.x0, "y0": self.y0, "x1": self.x1,
                "y1": self.y1}  # fmt: skip

    def pixels(self, width: float, height: float) -> tuple[float, float, float, float]:
        """This region in pixels of a rendering ``width`` x ``height`` of the page."""
        return (self.x0 * width, self.y0 * height, self.x1 * width, self.y1 * height)

    def contains(self, other: PageSpan) -> bool:
        """Whether ``other`` (on the same page) lies inside this span."""
        return (
            self.page_index == other.page_index
            and self.x0 <= other.x0
            and self.y0 <= other.y0
            and other.x1 <= self.x1
            and other.y1 <= self.y1
        )


def encode_bboxes(spans: Iterable[PageSpan]) -> str:
    """The ``bboxes`` metadata value of ``spans``: a compact JSON list of objects."""
    return json.dumps([span.to_dict() for span in spans], separators=(",", ":"))


def decode_bboxes(value: str | Sequence[Mapping[str, Any]]) -> list[PageSpan]:
    """Read a ``bboxes`` (or ``line_bboxes``) value back into :class:`PageSpan` objects.

    Takes the JSON string as stored in metadata, or the list it holds (some stores hand
    back parsed JSON). Raises :class:`GeometryError` naming the entry and what is wrong:
    not JSON, not a list of objects, a missing or extra key, a page index that is not a
    non-negative integer, a coordinate outside 0..1, or ``x0 > x1`` / ``y0 > y1``.
    """
    entries: Any = value
    if isinstance(value, str):
        try:
            entries = json.loads(value)
        except json.JSONDecodeError as error:
            raise GeometryError(f"bboxes is not JSON ({error}): {value[:80]!r}") from None
    if not isinstance(entries, list):
        raise GeometryError(f"bboxes must be a JSON list, not {type(entries).__name__}")
    return [_span(entry, position) for position, entry in enumerate(entries)]


def _span(entry: Any, position: int) -> PageSpan:
    where = f"bboxes entry {position}"
    if not isinstance(entry, Mapping):
        raise GeometryError(f"{where} must be an object, not {type(entry).__name__}")
    keys = set(entry)
    if keys != set(_SPAN_KEYS):
        missing, extra = set(_SPAN_KEYS) - keys, keys - set(_SPAN_KEYS)
        problems = [f"missing {sorted(missing)}"] if missing else []
        problems += [f"unknown {sorted(extra)}"] if extra else []
        raise GeometryError(f"{where}: {', '.join(problems)}; keys are {list(_SPAN_KEYS)}")
    page = entry["page_index"]
    if isinstance(page, bool) or not isinstance(page, int) or page < 0:
        raise GeometryError(f"{where}: page_index must be an integer >= 0, not {page!r}")
    values = []
    for key in _SPAN_KEYS[1:]:
        number = entry[key]
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise GeometryError(f"{where}: {key} must be a number, not {number!r}")
        if not 0.0 <= number <= 1.0:
            raise GeometryError(f"{where}: {key} = {number} is outside 0..1 (page fractions)")
        values.append(float(number))
    x0, y0, x1, y1 = values
    if x0 > x1 or y0 > y1:
        raise GeometryError(f"{where}: empty box (x0 {x0}, x1 {x1}, y0 {y0}, y1 {y1})")
    return PageSpan(page, x0, y0, x1, y1)


_Frame = tuple[float, float, float, float, float, float]


def _frame(image_bbox: Sequence[float] | None) -> _Frame | None:
    """``(left, top, right, bottom, x scale, y scale)`` of a usable ``image_bbox`` (the
    scales turn pixels into ten-thousandths of the page), else ``None``."""
    if image_bbox is None or len(image_bbox) != 4:
        return None
    left, top, right, bottom = image_bbox
    width, height = right - left, bottom - top
    # Sums of finite numbers are finite: one check catches NaN and infinities.
    if not math.isfinite(left + top + width + height) or width <= 0 or height <= 0:
        return None
    return left, top, right, bottom, _SCALE / width, _SCALE / height


def _units(bbox: Sequence[float] | None, frame: _Frame) -> list[int] | None:
    """A pixel box in ten-thousandths of the page, rounded outwards and clipped, or
    ``None``. Written for speed (no calls but floor and ceil): it runs for every line."""
    if bbox is None or len(bbox) != 4:
        return None
    x0, y0, x1, y1 = bbox
    if not (math.isfinite(x0 + y0 + x1 + y1) and x0 <= x1 and y0 <= y1):
        return None
    left, top, right, bottom, sx, sy = frame
    # A box entirely outside the page clips to a line on its edge: no place to point at.
    if x1 < left or y1 < top or x0 > right or y0 > bottom:
        return None
    # The slack keeps float noise (170 * 10000 / 850 = 2000.0000000000002) from pushing an
    # exact edge out by a whole unit; it is a millionth of a unit, far below a pixel.
    a = math.floor((x0 - left) * sx + _SLACK) if x0 > left else 0
    b = math.floor((y0 - top) * sy + _SLACK) if y0 > top else 0
    c = math.ceil((x1 - left) * sx - _SLACK) if x1 < right else _SCALE
    d = math.ceil((y1 - top) * sy - _SLACK) if y1 < bottom else _SCALE
    if a == c and b == d:
        return None
    return [a, b, c, d]


def normalize_box(
    bbox: Sequence[float] | None, image_bbox: Sequence[float] | None
) -> tuple[float, float, float, float] | None:
    """A pixel box ``[x0, y0, x1, y1]`` as page fractions, or ``None`` when it has none.

    ``None`` when the page has no usable ``image_bbox`` (not four finite numbers enclosing
    an area), or the box is missing, malformed, empty or entirely off the page. Parts of a
    box past the page's edges (a glyph's ascent above a crop box) are clipped. Fractions are
    rounded outwards to 4 decimals, so the result always contains the line.
    """
    frame = _frame(image_bbox)
    units = None if frame is None else _units(bbox, frame)
    if units is None:
        return None
    x0, y0, x1, y1 = (value / _SCALE for value in units)
    return x0, y0, x1, y1


def line_spans(page: OCRPage, page_index: int | None = None) -> list[PageSpan | None]:
    """Each line of ``page`` as a :class:`PageSpan`, or ``None`` where it has no usable box."""
    index = page_index if page_index is not None else (page.page_index or 0)
    spans: list[PageSpan | None] = []
    for line in page.text_lines:
        box = normalize_box(line.bbox, page.image_bbox)
        spans.append(None if box is None else PageSpan(index, *box))
    return spans


def union_by_page(spans: Iterable[PageSpan]) -> list[PageSpan]:
    """One span per page: the smallest box holding every span on it, pages in first-seen
    order."""
    pages: dict[int, PageSpan] = {}
    for span in spans:
        seen = pages.get(span.page_index)
        if seen is None:
            pages[span.page_index] = span
        else:
            pages[span.page_index] = PageSpan(
                span.page_index,
                min(seen.x0, span.x0),
                min(seen.y0, span.y0),
                max(seen.x1, span.x1),
                max(seen.y1, span.y1),
            )
    return list(pages.values())


# The line map.


@dataclass(frozen=True, slots=True)
class MappedLine:
    """One line of a record's text: ``text[start:end]``, on page ``page_index``, with its
    box (``None`` when the service gave none that can be placed on the page)."""

    page_index: int
    start: int
    end: int
    span: PageSpan | None


@dataclass(frozen=True, slots=True)
class LineMap:
    """Every line of one record's text, in text order, with its place on its page."""

    lines: tuple[MappedLine, ...]
    checksum: int

    def matches(self, text: str) -> bool:
        """Whether ``text`` is the text this map was made for (not edited since)."""
        return _checksum(text) == self.checksum


def _checksum(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def build_line_map(pages: Sequence[tuple[int, OCRPage]], separator: str) -> str:
    """The line map of a record made of ``pages`` (``(page_index, page)``), their texts
    joined by ``separator`` and each page's lines by ``"\\n"``, as ``OCRPage.text`` does.

    Compact JSON, about 25 bytes a line: ``{"v": 1, "crc": <crc32 of the text>, "pages":
    [[page_index, offset, [[length, x0, y0, x1, y1] or [length], ...]], ...]}``: where each
    page's text starts in the record's text, then each line's length and box (in
    ten-thousandths of the page, integers), lines one newline apart.
    """
    groups: list[list[Any]] = []
    offset = 0
    texts = []
    for number, (page_index, page) in enumerate(pages):
        if number:
            offset += len(separator)
        frame = _frame(page.image_bbox)
        rows: list[list[int]] = []
        lines = []
        for line in page.text_lines:
            units = None if frame is None else _units(line.bbox, frame)
            rows.append([len(line.text)] if units is None else [len(line.text), *units])
            lines.append(line.text)
        text = "\n".join(lines)
        groups.append([page_index, offset, rows])
        texts.append(text)
        offset += len(text)
    value = {"v": _LINE_MAP_VERSION, "crc": _checksum(separator.join(texts)), "pages": groups}
    return json.dumps(value, separators=(",", ":"))


def decode_line_map(value: str) -> LineMap:
    """Read a line map written by :func:`build_line_map`; :class:`GeometryError` if it is
    not one (another version, or damaged)."""
    try:
        data = json.loads(value)
        if data.get("v") != _LINE_MAP_VERSION:
            raise GeometryError(f"line map version {data.get('v')!r} is not {_LINE_MAP_VERSION}")
        lines = []
        for page_index, offset, rows in data["pages"]:
            start = int(offset)
            for row in rows:
                length, box = int(row[0]), row[1:]
                if len(box) not in (0, 4) or length < 0 or start < 0:
                    raise GeometryError(f"line map row {row!r} of page {page_index} is malformed")
                span = PageSpan(int(page_index), *(int(v) / _SCALE for v in box)) if box else None
                lines.append(MappedLine(int(page_index), start, start + length, span))
                start += length + 1
        return LineMap(tuple(lines), int(data["crc"]))
    except GeometryError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as error:
        raise GeometryError(f"not a line map ({error})") from None
