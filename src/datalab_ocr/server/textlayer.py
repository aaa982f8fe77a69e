"""Text lines from a PDF page's own text layer, in pixels of the page as displayed.

PDFium reports characters in content order, as UTF-16 code units, with generated spaces and
line breaks between them. Here they become clean lines:

- surrogate pairs are joined (emoji, mathematical letters, rarer CJK), PDFium's line-end
  hyphen (U+0002) becomes ``-``, and no other control character reaches the text;
- codes PDFium could not map and returns raw, beyond Unicode, are read as the UTF-8 bytes
  they are when a font is encoded in UTF-8;
- a glyph drawn again a little offset (a shadow, a fake bold) is read once (see
  :mod:`~datalab_ocr.server.copies`);
- boxes are turned into the page's displayed orientation (``/Rotate``), so a rotated page
  keeps its text layer and its lines are boxed where a rendering shows them;
- a line follows its writing direction: horizontal text ends when the next character leaves
  the line's band; vertical text (CJK written top to bottom, labels turned by 90 degrees)
  goes on down its column across PDFium's generated breaks;
- right-to-left runs are put in logical order (see :mod:`~datalab_ocr.server.bidi`);
- characters that carry no text (no Unicode mapping, private use, controls, U+FFFD) are
  counted: past :data:`GARBAGE_SHARE` of a page the layer is refused (the page goes to OCR),
  below it the lines that hold such characters get a confidence below 1.

A line's box is the union of the loose boxes (font ascent to descent) of its characters,
which is what an OCR engine would report for the same line.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from datalab_ocr._models import TextLine
from datalab_ocr.server.bidi import Glyph, logical_order
from datalab_ocr.server.copies import Copies

__all__ = ["GARBAGE_SHARE", "PageGeometry", "SilentGlyphs", "has_text_layer", "text_layer_lines"]

GARBAGE_SHARE = 0.3
"""Share of a page's characters that carry no text above which its text layer is refused."""

_BREAKS = {"\n", "\r"}
_LINE_END_HYPHEN = 0x02


@dataclass(frozen=True)
class PageGeometry:
    """How PDF points map to pixels of the displayed page: crop box, rotation, scale."""

    left: float
    top: float
    scale: float
    right: float | None = None
    bottom: float | None = None
    rotation: int = 0

    @classmethod
    def for_page(cls, page: Any, scale: float) -> PageGeometry:
        """The geometry of a pypdfium2 page rendered at ``scale``."""
        # The page's own box, as rendered: a MediaBox or CropBox inherited from the page tree
        # counts (pypdfium2's get_cropbox reads the page dictionary alone and falls back to
        # Letter, which shifted every box of an A4 page whose size is set on its parent).
        left, bottom, right, top = page.get_bbox()
        return cls(left, top, scale, right, bottom, int(page.get_rotation()) % 360)

    @property
    def size(self) -> tuple[int, int]:
        """The displayed page's size in pixels (width, height)."""
        width = ((self.right or 0.0) - self.left) * self.scale
        height = (self.top - (self.bottom or 0.0)) * self.scale
        if self.rotation in (90, 270):
            width, height = height, width
        return round(width), round(height)

    def _point(self, x: float, y: float) -> tuple[float, float]:
        right = self.right if self.right is not None else self.left
        bottom = self.bottom if self.bottom is not None else self.top
        if self.rotation == 90:
            return y - bottom, x - self.left
        if self.rotation == 180:
            return right - x, y - bottom
        if self.rotation == 270:
            return self.top - y, right - x
        return x - self.left, self.top - y

    def to_pixels(self, box: tuple[float, float, float, float]) -> list[float]:
        """A PDF ``(left, bottom, right, top)`` box as pixel ``[x0, y0, x1, y1]``."""
        left, bottom, right, top = box
        (ax, ay), (bx, by) = self._point(left, bottom), self._point(right, top)
        return [
            round(min(ax, bx) * self.scale, 2),
            round(min(ay, by) * self.scale, 2),
            round(max(ax, bx) * self.scale, 2),
            round(max(ay, by) * self.scale, 2),
        ]


def _is_garbage(char: str) -> bool:
    category = unicodedata.category(char)
    return category in ("Cc", "Co", "Cs", "Cn") or char == "\ufffd"


def _is_upright_cjk(char: str) -> bool:
    # Scripts that vertical writing sets upright, one character below the other.
    return unicodedata.east_asian_width(char) in ("W", "F")


@dataclass
class _Line:
    glyphs: list[Glyph] = field(default_factory=list)
    box: list[float] | None = None
    vertical: bool = False
    doubtful: int = 0

    def _x_band(self, glyph: Glyph) -> bool:
        assert self.box is not None
        centre = (glyph.box[0] + glyph.box[2]) / 2
        return self.box[0] <= centre <= self.box[2]

    def _y_band(self, glyph: Glyph) -> bool:
        assert self.box is not None
        centre = (glyph.box[1] + glyph.box[3]) / 2
        return self.box[1] <= centre <= self.box[3]

    def _below(self, glyph: Glyph) -> bool:
        # The next character of a column: in the column's band, just under (or over) its end.
        assert self.box is not None
        last = self.glyphs[-1].box
        height = max(last[3] - last[1], glyph.box[3] - glyph.box[1], 1.0)
        gap = min(abs(glyph.box[1] - last[3]), abs(last[1] - glyph.box[3]))
        return self._x_band(glyph) and not self._y_band(glyph) and gap <= height

    def continues_vertically(self, glyph: Glyph) -> bool:
        """Whether ``glyph`` goes on down this line's column."""
        if self.box is None or not self.glyphs or not (self.vertical or len(self.glyphs) == 1):
            return False
        first = self.glyphs[0]
        turned = glyph.turned and first.turned
        upright = _is_upright_cjk(glyph.text[0]) and _is_upright_cjk(first.text[0])
        return (turned or upright) and self._below(glyph)

    def holds(self, glyph: Glyph) -> bool:
        """Whether ``glyph`` belongs to this line, no break having come between."""
        if self.box is None:
            return True
        if self.vertical:
            return self._x_band(glyph)
        return self._y_band(glyph) or self.continues_vertically(glyph)

    def add(self, glyph: Glyph) -> None:
        if self.box is not None and len(self.glyphs) == 1 and not self._y_band(glyph):
            self.vertical = self.continues_vertically(glyph)
        self.glyphs.append(glyph)
        self.doubtful += glyph.doubtful
        box, own = glyph.box, self.box
        if own is None:
            self.box = list(box)
            return
        own[0] = min(own[0], box[0])
        own[1] = min(own[1], box[1])
        own[2] = max(own[2], box[2])
        own[3] = max(own[3], box[3])


def has_text_layer(textpage: Any) -> bool:
    """Whether the page has any non-blank text in its text layer."""
    count = int(textpage.count_chars())
    return count > 0 and bool(textpage.get_text_range(0, count).strip())


def _font_name(raw: Any, textpage: Any, index: int) -> bytes:
    import ctypes

    buffer = ctypes.create_string_buffer(128)
    flags = ctypes.c_int(0)
    size = int(raw.FPDFText_GetFontInfo(textpage, index, buffer, 128, ctypes.byref(flags)))
    return buffer.raw[: max(size - 1, 0)]


def _unmapped_in_mapped_fonts(raw: Any, textpage: Any, unmapped: list[int]) -> set[int]:
    """The unmapped characters of fonts that map their other glyphs: those carry no text.

    PDFium flags every character of a font that has no ToUnicode map, yet guesses most of
    them right from the font's encoding; a glyph that a font's map leaves out is a different
    thing (a ligature's second half, a decoration) and its made-up code is noise.
    """
    flagged = set(unmapped)
    unmapped_fonts = {index: _font_name(raw, textpage, index) for index in unmapped}
    wanted = set(unmapped_fonts.values())
    mapping_fonts: set[bytes] = set()
    for index in range(int(raw.FPDFText_CountChars(textpage))):
        if index in flagged or raw.FPDFText_IsGenerated(textpage, index):
            continue
        if chr(int(raw.FPDFText_GetUnicode(textpage, index))).isspace():
            continue
        mapping_fonts.add(_font_name(raw, textpage, index))
        if wanted <= mapping_fonts:
            break
    return {index for index, font in unmapped_fonts.items() if font in mapping_fonts}


def _code_at(get_unicode: Any, handle: Any, index: int, count: int) -> tuple[int, int]:
    """The character at ``index`` (a UTF-16 surrogate pair joined) and the next index."""
    code = int(get_unicode(handle, index))
    index += 1
    if 0xD800 <= code < 0xDC00 and index < count:
        low = int(get_unicode(handle, index))
        if 0xDC00 <= low < 0xE000:
            return 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00), index + 1
    return code, index


def _silence(
    raw: Any, handle: Any, silent: frozenset[tuple[bytes, int]]
) -> Callable[[int, int], bool]:
    """Whether the character at an index, read as ``code``, is a glyph its font's map
    leaves without text (the font is asked only for codes such a glyph can give)."""
    codes = {code for _, code in silent}

    def is_silent(index: int, code: int) -> bool:
        return code in codes and (_font_name(raw, handle, index), code) in silent

    return is_silent


def _utf8(code: int) -> str | None:
    """The text of a code PDFium could not take as a character: a ToUnicode map written in
    UTF-8 instead of UTF-16 gives the bytes of the character; None if they are not UTF-8."""
    try:
        text = code.to_bytes(4, "big").lstrip(b"\0").decode("utf-8")
    except (UnicodeDecodeError, OverflowError):
        return None
    return text if text and not any(_is_garbage(char) for char in text) else None


SilentGlyphs = Callable[[], frozenset[tuple[bytes, int]]]
"""Gives the page's ``(font name, code)`` pairs whose ToUnicode text is empty: PDFium reads
those glyphs from the font's encoding (a bullet where it has no name) or as their codes."""


def _glyphs(
    textpage: Any, geometry: PageGeometry, silent: SilentGlyphs | None = None
) -> tuple[list[Glyph | None], int, int]:
    """The page's characters (None for a break), its visible count and its garbage count."""
    from pypdfium2 import raw

    handle = textpage.raw
    count = int(raw.FPDFText_CountChars(handle))
    has_map_error = raw.FPDFText_HasUnicodeMapError
    unmapped = [i for i in range(count) if has_map_error(handle, i)]
    noise = _unmapped_in_mapped_fonts(raw, handle, unmapped) if unmapped else set()
    # Only where PDFium flagged glyphs of a font that maps others (a shaped cluster's extra
    # glyphs, say): there the font's map may leave other glyphs empty too, which PDFium reads
    # as characters without a flag. pypdf reading the maps of every page would cost 15 %.
    quiet = silent() if noise and silent is not None else frozenset()
    is_silent = _silence(raw, handle, quiet)
    get_unicode, get_angle = raw.FPDFText_GetUnicode, raw.FPDFText_GetCharAngle
    box_of = _BoxReader(handle, geometry)
    copies = Copies(handle, 2 * geometry.scale)
    turn = math.radians(geometry.rotation)
    glyphs: list[Glyph | None] = []
    visible = garbage = 0
    index = 0
    while index < count:
        box_index = index
        code, index = _code_at(get_unicode, handle, index, count)
        if is_silent(box_index, code):
            continue  # the font's ToUnicode map says this glyph has no text
        # PDFium writes a line-end hyphen as U+0002; of the rest, only a soft hyphen may be one.
        if code == _LINE_END_HYPHEN or (code == 0xAD and raw.FPDFText_IsHyphen(handle, box_index)):
            code = ord("-")
        decoded = _utf8(code) if code >= 0x110000 else None
        char = decoded or (chr(code) if 0 <= code < 0x110000 else "\ufffd")
        if char in _BREAKS:
            glyphs.append(None)
            continue
        if char == "\t" or (char.isspace() and unicodedata.category(char) != "Cc"):
            char = " "
        bad = not decoded and (box_index in noise or _is_garbage(char))
        box = box_of(box_index)
        if char != " ":
            if not bad and copies.seen(char, box, box_index):
                continue
            visible += 1
            garbage += bad
        if bad:
            # Kept out of the text, counted for the verdict on the layer and the line.
            glyphs.append(Glyph("", box, doubtful=1))
            continue
        # The baseline's angle on the displayed page (counter-clockwise; pixel y runs down).
        angle = float(get_angle(handle, box_index)) - turn
        if angle == 0.0:
            glyphs.append(Glyph(char, box))
            continue
        cos, sin = math.cos(angle), math.sin(angle)
        along = [x * cos - y * sin for x in box[::2] for y in box[1::2]]
        glyphs.append(Glyph(char, box, turned=abs(sin) > 0.7, span=(min(along), max(along))))
    return glyphs, visible, garbage


class _BoxReader:
    """Characters' loose boxes (font ascent to descent) in pixels of the displayed page."""

    def __init__(self, handle: Any, geometry: PageGeometry) -> None:
        from pypdfium2 import raw

        self.handle, self.geometry = handle, geometry
        self.rect = raw.FS_RECTF()
        self.get_box = raw.FPDFText_GetLooseCharBox

    def __call__(self, index: int) -> tuple[float, ...]:
        rect = self.rect
        if not self.get_box(self.handle, index, rect):
            return (0.0, 0.0, 0.0, 0.0)
        geometry, scale = self.geometry, self.geometry.scale
        if geometry.rotation == 0:
            # The common case, without the general projection.
            return (
                (rect.left - geometry.left) * scale,
                (geometry.top - rect.top) * scale,
                (rect.right - geometry.left) * scale,
                (geometry.top - rect.bottom) * scale,
            )
        (ax, ay), (bx, by) = (
            geometry._point(rect.left, rect.bottom),
            geometry._point(rect.right, rect.top),
        )
        return (min(ax, bx) * scale, min(ay, by) * scale, max(ax, bx) * scale, max(ay, by) * scale)


def _lines(glyphs: list[Glyph | None]) -> list[_Line]:
    lines: list[_Line] = []
    current = _Line()
    broken = False
    for glyph in glyphs:
        if glyph is None:
            broken = True
            continue
        if not glyph.text.strip():
            # Spaces have no trustworthy box: they go with whatever line they fall in.
            if glyph.text and current.glyphs:
                current.glyphs.append(glyph)
            current.doubtful += glyph.doubtful
            continue
        own = current.box
        if not broken and own is not None and not current.vertical:
            # The common case, inline: the glyph's centre in the band of a horizontal line.
            box = glyph.box
            if own[1] <= (box[1] + box[3]) / 2 <= own[3]:
                current.glyphs.append(glyph)
                current.doubtful += glyph.doubtful
                own[0], own[2] = min(own[0], box[0]), max(own[2], box[2])
                own[1], own[3] = min(own[1], box[1]), max(own[3], box[3])
                continue
        goes_on = current.continues_vertically(glyph) if broken else current.holds(glyph)
        if not goes_on:
            lines.append(current)
            current = _Line()
        broken = False
        current.add(glyph)
    lines.append(current)
    return lines


def text_layer_lines(
    textpage: Any, geometry: PageGeometry, silent: SilentGlyphs | None = None
) -> list[TextLine] | None:
    """The lines of a PDFium text page in content order; None when the layer is garbage.

    Garbage: more than :data:`GARBAGE_SHARE` of its visible characters carry no text. A line
    holding such characters gets the share of good ones as its confidence and
    ``original_text_good=False``; others get 1.0 and ``original_text_good=True``. ``silent``
    tells which glyphs the fonts' ToUnicode maps give no text (see ``server/tounicode.py``).
    """
    glyphs, visible, garbage = _glyphs(textpage, geometry, silent)
    if visible == 0 or garbage > GARBAGE_SHARE * visible:
        return None
    result: list[TextLine] = []
    for line in _lines(glyphs):
        text = "".join(glyph.text for glyph in line.glyphs)
        if not text.isascii():  # no right-to-left letter is ASCII: most lines skip the sort
            text = "".join(glyph.text for glyph in logical_order(line.glyphs))
        text = " ".join(text.split())
        if not text or line.box is None:
            continue
        x0, y0, x1, y1 = (round(value, 2) for value in line.box)
        confidence = 1.0
        if line.doubtful:
            confidence = round(len(text) / (len(text) + line.doubtful), 3)
        result.append(
            TextLine(
                text=text,
                confidence=confidence,
                polygon=[[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
                bbox=[x0, y0, x1, y1],
                # Marks the line as read from the text layer (False: kept, but doubtful), so
                # a reader can tell it from the OCR lines of the page's images.
                original_text_good=not line.doubtful,
            )
        )
    return result
