"""Text lines from a PDF page's own text layer, in pixels of the rendered page.

PDFium reports characters in content order and inserts generated spaces and line breaks
between them. A line ends at a generated break, or when the next character's vertical centre
leaves the current line's band (text written out of order, columns side by side). A line's box
is the union of the loose boxes (font ascent to descent) of its visible characters, which is
what an OCR engine would report for the same line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datalab_ocr._models import TextLine

__all__ = ["PageGeometry", "has_text_layer", "text_layer_lines"]

_BREAKS = {"\n", "\r"}


@dataclass(frozen=True)
class PageGeometry:
    """How PDF points map to pixels: the crop box origin and the render scale."""

    left: float
    top: float
    scale: float

    def to_pixels(self, box: tuple[float, float, float, float]) -> list[float]:
        """A PDF ``(left, bottom, right, top)`` box as pixel ``[x0, y0, x1, y1]``."""
        left, bottom, right, top = box
        return [
            round((left - self.left) * self.scale, 2),
            round((self.top - top) * self.scale, 2),
            round((right - self.left) * self.scale, 2),
            round((self.top - bottom) * self.scale, 2),
        ]


@dataclass
class _Line:
    chars: list[str] = field(default_factory=list)
    box: list[float] | None = None

    def band_holds(self, centre: float) -> bool:
        return self.box is None or self.box[1] <= centre <= self.box[3]

    def add(self, char: str, box: tuple[float, float, float, float] | None) -> None:
        self.chars.append(char)
        if box is None:
            return
        if self.box is None:
            self.box = list(box)
        else:
            self.box = [
                min(self.box[0], box[0]),
                min(self.box[1], box[1]),
                max(self.box[2], box[2]),
                max(self.box[3], box[3]),
            ]


def has_text_layer(textpage: Any) -> bool:
    """Whether the page has any non-blank text in its text layer."""
    count = int(textpage.count_chars())
    return count > 0 and bool(textpage.get_text_range(0, count).strip())


def _char_at(raw: Any, textpage: Any, index: int) -> str:
    code = int(raw.FPDFText_GetUnicode(textpage, index))
    return chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else ""


def text_layer_lines(textpage: Any, geometry: PageGeometry) -> list[TextLine]:
    """The lines of a PDFium text page, in content order, with confidence 1.0."""
    from pypdfium2 import raw

    lines: list[_Line] = []
    current = _Line()
    for index in range(int(textpage.count_chars())):
        char = _char_at(raw, textpage, index)
        if char in _BREAKS:
            lines.append(current)
            current = _Line()
            continue
        box: tuple[float, float, float, float] | None = None
        if char.strip():
            left, bottom, right, top = textpage.get_charbox(index, loose=True)
            box = (left, bottom, right, top)
            if not current.band_holds((bottom + top) / 2):
                lines.append(current)
                current = _Line()
        current.add(char, box)
    lines.append(current)

    result: list[TextLine] = []
    for line in lines:
        text = " ".join("".join(line.chars).split())
        if not text or line.box is None:
            continue
        x0, y0, x1, y1 = geometry.to_pixels((line.box[0], line.box[1], line.box[2], line.box[3]))
        result.append(
            TextLine(
                text=text,
                confidence=1.0,
                polygon=[[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
                bbox=[x0, y0, x1, y1],
            )
        )
    return result
