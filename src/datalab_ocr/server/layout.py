"""Page geometry for OCR: the render budget, image regions, turned pages, reading order.

Pure functions over boxes and lines, plus a scan of a PDFium page's objects for the image
regions that carry no text layer. The engine uses them to decide, region by region, what is
read from the text layer and what is OCRed, and to merge both into one reading order.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from datalab_ocr._models import TextLine

__all__ = [
    "DEFAULT_MAX_RENDER_PIXELS",
    "MIN_OCR_DPI",
    "MIN_REGION_LINE_CONFIDENCE",
    "ImageRegion",
    "fit_scale",
    "image_regions",
    "line_box",
    "merge_reading_order",
    "order_lines",
    "regions_to_ocr",
    "rotate_lines",
    "scale_lines",
    "shift_lines",
]

DEFAULT_MAX_RENDER_PIXELS = 25_000_000
"""The most pixels a page (or image) is rendered to for OCR: 25 Mpx, 75 MB of RGB.

At 144 dpi a US Letter page is 1.9 Mpx and an A0 poster 32 Mpx (so rendered at 127 dpi);
larger pages get a lower resolution, so one worker stays well under 1 GB (352 MB measured)
whatever size a page claims.
"""

MIN_OCR_DPI = 50
"""Below this resolution print is unreadable: a page that only fits the budget below it fails."""

MIN_REGION_SQUARE_INCHES = 1.0
"""Smaller images (logos, icons, bullets) are never OCRed on pages with a text layer."""

MAX_TEXT_CHARS_PER_SQUARE_INCH = 2.0
"""An image with fewer text-layer characters over it than this is OCRed.

A scan with an OCR text layer has 20-40 characters per square inch of its text; a scan with
only a stamp, a Bates number or a header added has well under one.
"""

MIN_REGION_LINE_CONFIDENCE = 0.4
"""OCR lines of an image region below this confidence are dropped: photos read as noise."""


@dataclass(frozen=True)
class ImageRegion:
    """An image on a PDF page: its box in PDF points ``(left, bottom, right, top)``."""

    left: float
    bottom: float
    right: float
    top: float

    @property
    def square_inches(self) -> float:
        """The region's area in square inches."""
        return max(0.0, self.right - self.left) * max(0.0, self.top - self.bottom) / 72**2


def fit_scale(width: float, height: float, scale: float, max_pixels: int) -> float:
    """The render scale of a ``width`` x ``height`` point page: ``scale``, or less to fit.

    The result keeps ``width * height * scale**2`` at or under ``max_pixels``.
    """
    pixels = width * scale * height * scale
    if pixels <= max_pixels:
        return scale
    # Rounding of the bitmap size can add a pixel per side: stay a little under.
    return scale * math.sqrt(max_pixels / pixels) * 0.999


def _bounds(raw: Any, obj: Any) -> tuple[float, float, float, float] | None:
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    if not raw.FPDFPageObj_GetBounds(obj, left, bottom, right, top):
        return None
    return (left.value, bottom.value, right.value, top.value)


def _holds_image(raw: Any, form: Any, depth: int = 0) -> bool:
    for index in range(int(raw.FPDFFormObj_CountObjects(form))):
        child = raw.FPDFFormObj_GetObject(form, index)
        kind = raw.FPDFPageObj_GetType(child)
        if kind == raw.FPDF_PAGEOBJ_IMAGE:
            return True
        if kind == raw.FPDF_PAGEOBJ_FORM and depth < 8 and _holds_image(raw, child, depth + 1):
            return True
    return False


def image_regions(page: Any) -> list[ImageRegion]:
    """The images drawn on a pypdfium2 page, each with its box in PDF points.

    Top-level image objects count with their own box; a form XObject that draws an image
    counts with the box of the whole form (its children's boxes are in the form's space).
    """
    from pypdfium2 import raw

    regions = []
    handle = page.raw
    for index in range(int(raw.FPDFPage_CountObjects(handle))):
        obj = raw.FPDFPage_GetObject(handle, index)
        kind = raw.FPDFPageObj_GetType(obj)
        is_image = kind == raw.FPDF_PAGEOBJ_IMAGE
        if not is_image and not (kind == raw.FPDF_PAGEOBJ_FORM and _holds_image(raw, obj)):
            continue
        box = _bounds(raw, obj)
        if box is not None:
            regions.append(ImageRegion(*box))
    return regions


def _centre_inside(line: TextLine, box: Sequence[float]) -> bool:
    x0, y0, x1, y1 = line_box(line)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def regions_to_ocr(
    regions: Sequence[tuple[ImageRegion, list[float]]], text_lines: Sequence[TextLine]
) -> list[list[float]]:
    """The pixel boxes of the image regions that carry (almost) no text-layer text.

    ``regions`` pairs each image with its box in page pixels; ``text_lines`` are the page's
    text-layer lines in the same pixels. Regions inside an already chosen one are skipped.
    """
    chosen: list[list[float]] = []
    for region, box in sorted(regions, key=lambda pair: -pair[0].square_inches):
        area = region.square_inches
        if area < MIN_REGION_SQUARE_INCHES:
            continue
        chars = sum(len(line.text) for line in text_lines if _centre_inside(line, box))
        if chars / area >= MAX_TEXT_CHARS_PER_SQUARE_INCH:
            continue
        if any(_box_inside(box, outer) for outer in chosen):
            continue
        chosen.append(box)
    return chosen


def _box_inside(inner: Sequence[float], outer: Sequence[float]) -> bool:
    return all(inner[i] >= outer[i] for i in (0, 1)) and all(inner[i] <= outer[i] for i in (2, 3))


def line_box(line: TextLine) -> list[float]:
    """The ``[x0, y0, x1, y1]`` box of a line (every line this server makes has one)."""
    if line.bbox is not None:
        return line.bbox
    if line.polygon:
        xs = [point[0] for point in line.polygon]
        ys = [point[1] for point in line.polygon]
        return [min(xs), min(ys), max(xs), max(ys)]
    return [0.0, 0.0, 0.0, 0.0]


def _corners(line: TextLine) -> list[list[float]]:
    if line.polygon:
        return [[point[0], point[1]] for point in line.polygon]
    x0, y0, x1, y1 = line_box(line)
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


_PointMap = Callable[[float, float], list[float]]


def _mapped(lines: Sequence[TextLine], point: _PointMap) -> list[TextLine]:
    moved = []
    for line in lines:
        polygon = [[round(value, 2) for value in point(x, y)] for x, y in _corners(line)]
        xs = [corner[0] for corner in polygon]
        ys = [corner[1] for corner in polygon]
        moved.append(
            TextLine(
                text=line.text,
                confidence=line.confidence,
                polygon=polygon,
                bbox=[min(xs), min(ys), max(xs), max(ys)],
            )
        )
    return moved


def shift_lines(lines: Sequence[TextLine], dx: float, dy: float) -> list[TextLine]:
    """``lines`` moved by ``(dx, dy)`` pixels: from a cropped region back to its page."""
    return _mapped(lines, lambda x, y: [x + dx, y + dy])


def scale_lines(lines: Sequence[TextLine], factor: float) -> list[TextLine]:
    """``lines`` with every coordinate multiplied by ``factor``: from a downscaled copy back."""
    return _mapped(lines, lambda x, y: [x * factor, y * factor])


def rotate_lines(lines: Sequence[TextLine], angle: int, size: tuple[int, int]) -> list[TextLine]:
    """Lines read on an image turned ``angle`` degrees counter-clockwise, mapped back.

    ``size`` is the original image's size. Each polygon keeps its corners in reading order
    (the text's top-left first), so on a turned page it starts at another corner of its box.
    """
    width, height = size

    def back(x: float, y: float) -> list[float]:
        if angle == 90:
            return [width - y, x]
        if angle == 180:
            return [width - x, height - y]
        if angle == 270:
            return [y, height - x]
        return [x, y]

    return _mapped(lines, back)


def _block_box(block: Sequence[TextLine]) -> list[float]:
    boxes = [line_box(line) for line in block]
    return [
        min(box[0] for box in boxes),
        min(box[1] for box in boxes),
        max(box[2] for box in boxes),
        max(box[3] for box in boxes),
    ]


def _comes_after(line: TextLine, block: list[float]) -> bool:
    """Whether ``line`` reads after a block of lines that it does not belong to."""
    x0, y0, x1, _y1 = line_box(line)
    below_in_its_column = x0 < block[2] and x1 > block[0] and y0 >= block[1]
    next_column = x0 >= block[2] and y0 < block[3]
    return below_in_its_column or next_column


def merge_reading_order(
    text_lines: Sequence[TextLine], blocks: Sequence[Sequence[TextLine]]
) -> list[TextLine]:
    """The text layer's lines with blocks of OCR lines (one per image region) put in place.

    Every sequence keeps its own order. A block goes before the first line that reads after
    it: the first one below its top in the same column (a Bates number at the foot of a scan,
    the paragraph under a figure), or the first one of a column to its right that starts
    above its bottom; with no such line it goes last. A stamp above a scan so comes first.
    """
    merged = list(text_lines)
    for block in blocks:
        if not block:
            continue
        box = _block_box(block)
        at = next(
            (index for index, line in enumerate(merged) if _comes_after(line, box)), len(merged)
        )
        merged[at:at] = block
    return merged


def _groups(lines: list[TextLine], axis: int, min_gap: float) -> list[list[TextLine]]:
    """``lines`` split where their boxes, projected on ``axis`` (0: x, 1: y), leave a gap
    wider than ``min_gap``; the groups in increasing order along the axis."""
    ordered = sorted(lines, key=lambda line: line_box(line)[axis])
    groups: list[list[TextLine]] = []
    reach = float("-inf")
    for line in ordered:
        box = line_box(line)
        if not groups or box[axis] - reach > min_gap:
            groups.append([])
        groups[-1].append(line)
        reach = max(reach, box[axis + 2])
    return groups


def order_lines(lines: Sequence[TextLine]) -> list[TextLine]:
    """Lines of an engine without layout analysis (each line found on its own) in reading
    order: columns top to bottom, left to right.

    A recursive XY cut: a vertical gap that no line crosses splits columns (read left to
    right); failing that, a horizontal gap of at least a line's height splits bands (read top
    to bottom: a heading above columns, a footer below them). Narrower gaps between lines
    split nothing, so the rows of side-by-side columns never pair up across the gutter.
    """
    found = list(lines)
    if len(found) < 2:
        return found
    heights = sorted(line_box(line)[3] - line_box(line)[1] for line in found)
    line_height = heights[len(heights) // 2]
    columns = _groups(found, 0, line_height * 0.5)
    if len(columns) > 1:
        return [line for column in columns for line in order_lines(column)]
    bands = _groups(found, 1, line_height * 0.9)
    if len(bands) > 1:
        return [line for band in bands for line in order_lines(band)]
    # One block: top to bottom; lines on one baseline left to right.
    return sorted(
        found, key=lambda line: (round(line_box(line)[1] / line_height), line_box(line)[0])
    )
