"""Glyphs drawn again over themselves, a little offset: a shadow, a fake bold, a halo.

Drawing programs write a label's shadow as a second copy of its text, and some producers
make bold type by drawing a line two or three times. PDFium drops a copy drawn exactly over
its original, but not one a little offset; when each letter is shown on its own it even
interleaves the copies (``MMuunniicciippaalliittéé``). Only the first drawing is read.

A copy has the same text and size as a glyph drawn before it, its centre within half a
glyph of that one's, and the ink of the two (PDFium's tight boxes) overlapping by half at
least (or, once a copy is found, the same shift from its original as that copy: a shadow
moves its whole text by one vector, narrow letters whose inks do not touch included). Two
periods side by side, or the dots of a dotted rule, stand apart however close their loose
boxes come. The characters of one glyph that maps to several (a ligature, an
Arabic word) share one box and are no copies of each other.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Copies"]

Box = tuple[float, ...]


def _similar(one: float, other: float) -> bool:
    return abs(one - other) <= 0.2 * max(one, other)


class Copies:
    """The glyphs of one page seen so far, to tell a copy from a new glyph.

    ``cell`` is the grid step for looking glyphs up, in the boxes' units: copies offset by up
    to half a cell are found. A glyph that simply goes on along its line from the last one
    kept is no copy and is not looked up: only glyphs that step back or away (a copy, a new
    line, right-to-left or vertical text) are, which keeps the check cheap.
    """

    def __init__(self, textpage: Any, cell: float) -> None:
        from pypdfium2 import raw

        self.handle = textpage
        self.tight_box = raw.FPDFText_GetCharBox
        self.cell = max(cell, 1e-6)
        self.cells: dict[tuple[str, int, int], list[tuple[Box, int]]] = {}
        self.last: Box | None = None
        self.kept: Box = (0.0, 0.0, 0.0, 0.0)
        self.shift: tuple[float, float] | None = None

    def seen(self, char: str, box: Box, index: int) -> bool:
        """Whether character ``index`` (its loose ``box``) copies one seen before; else it
        is remembered."""
        if box == self.last or box[2] <= box[0] or box[3] <= box[1]:
            return False  # the same glyph's next character, or a glyph with no size
        self.last = box
        x, y = (box[0] + box[2]) / (2 * self.cell), (box[1] + box[3]) / (2 * self.cell)
        kx, ky = int(x), int(y)
        kept = self.kept
        goes_on = box[0] >= kept[2] - (kept[2] - kept[0]) / 2 and (
            kept[1] <= (box[1] + box[3]) / 2 <= kept[3]
        )
        if not goes_on and self._near(char, box, index, x, y):
            return True
        self.kept = box
        self.cells.setdefault((char, kx, ky), []).append((box, index))
        return False

    def _near(self, char: str, box: Box, index: int, x: float, y: float) -> bool:
        kx, ky = int(x), int(y)
        # The four cells nearest the centre hold every centre within half a cell of it.
        nx = kx + 1 if x - kx >= 0.5 else kx - 1
        ny = ky + 1 if y - ky >= 0.5 else ky - 1
        width, height = box[2] - box[0], box[3] - box[1]
        for key in ((char, kx, ky), (char, nx, ky), (char, kx, ny), (char, nx, ny)):
            for other, other_index in self.cells.get(key, ()):
                other_width, other_height = other[2] - other[0], other[3] - other[1]
                if not _similar(width, other_width) or not _similar(height, other_height):
                    continue  # the same letter drawn smaller inside a bigger one, say
                dx = abs(other[0] + other[2] - box[0] - box[2]) / 2
                dy = abs(other[1] + other[3] - box[1] - box[3]) / 2
                if dx > min(width, other_width) / 2 or dy > min(height, other_height) / 2:
                    continue
                shift = (
                    box[0] + box[2] - other[0] - other[2],
                    box[1] + box[3] - other[1] - other[3],
                )
                if self._same_shift(shift) or self._inks_overlap(index, other_index):
                    self.shift = shift
                    return True
        return False

    def _same_shift(self, shift: tuple[float, float]) -> bool:
        # A shadow is its text displaced by one vector: once a copy is certain, a narrow
        # letter (an i, whose ink the shadow's does not touch) at the same shift is one too.
        if self.shift is None:
            return False
        tolerance = self.cell / 10
        return abs(shift[0] - self.shift[0]) <= tolerance and abs(shift[1] - self.shift[1]) <= (
            tolerance
        )

    def _inks_overlap(self, one: int, other: int) -> bool:
        import ctypes

        boxes = []
        for index in (one, other):
            left, right, bottom, top = (ctypes.c_double() for _ in range(4))
            if not self.tight_box(self.handle, index, left, right, bottom, top):
                return False
            boxes.append((left.value, bottom.value, right.value, top.value))
        (a0, b0, a1, b1), (c0, d0, c1, d1) = boxes
        overlap = max(0.0, min(a1, c1) - max(a0, c0)) * max(0.0, min(b1, d1) - max(b0, d0))
        smaller = min((a1 - a0) * (b1 - b0), (c1 - c0) * (d1 - d0))
        return smaller > 0 and overlap >= smaller / 2
