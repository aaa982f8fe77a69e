"""Right-to-left text from a PDF text layer, put in logical (reading) order.

A PDF draws glyphs wherever it likes, and producers write Arabic or Hebrew runs either in
reading order or in visual order (left to right on the page). PDFium reorders what it takes
for visual order and gets some cases wrong: a glyph whose ToUnicode entry is a whole word
comes out backwards. The positions on the page do not lie, so a line holding right-to-left
characters is ordered from its glyphs' boxes:

1. glyphs are sorted by their centres along their baseline (left to right for upright
   text); characters that share one box (a glyph mapped to several characters) stay
   together, and a space, whose box PDFium makes up, stays beside the glyph before it;
2. a line whose base direction is right to left (more right-to-left letters than left to
   right ones) is read from the right: the visual order reversed, then every run of left to
   right letters and digits (with the spaces and punctuation inside it) turned back;
3. a left-to-right line reverses only its right-to-left runs.

Numbers inside Arabic text therefore keep their digit order, and Latin words keep theirs.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = ["Glyph", "has_rtl", "logical_order"]

_RTL = {"R", "AL"}
_LTR = {"L", "EN", "AN"}


@dataclass(slots=True)  # not frozen: a frozen dataclass is made 3x slower, per character
class Glyph:
    """One character of a text layer: its text, its box in pixels and what is known of it.

    Never changed once made.
    """

    text: str
    box: tuple[float, ...]
    turned: bool = False
    doubtful: int = 0
    span: tuple[float, float] | None = None
    """Where the glyph starts and ends along its baseline (None: along the x axis)."""

    @property
    def start(self) -> float:
        """The glyph's start along its baseline."""
        return self.box[0] if self.span is None else self.span[0]

    @property
    def end(self) -> float:
        """The glyph's end along its baseline."""
        return self.box[2] if self.span is None else self.span[1]


def _direction(text: str) -> str:
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in _RTL:
            return "R"
        if kind in _LTR:
            return "L"
    return "N"


def has_rtl(glyphs: list[Glyph]) -> bool:
    """Whether any glyph holds a right-to-left letter."""
    return any(_direction(glyph.text) == "R" for glyph in glyphs)


def _centre(glyph: Glyph) -> float:
    return (glyph.start + glyph.end) / 2


def _space_place(glyphs: list[Glyph], before: Glyph, after: Glyph | None) -> float:
    """Where a space goes: PDFium makes up its box, so it is put in the free gap beside the
    glyph before it, on the side of the glyph after it, or else just beside that one."""
    leftwards = after is not None and _centre(after) < _centre(before)
    candidates = [before.start - 0.01] if leftwards else [before.end + 0.01]
    if after is not None:
        candidates.append(after.end + 0.01 if leftwards else after.start - 0.01)
    for place in candidates:
        if not any(g.text.strip() and g.start < place < g.end for g in glyphs):
            return place
    return candidates[0]


def _units(glyphs: list[Glyph]) -> list[tuple[float, int, list[Glyph]]]:
    """Glyphs grouped into units (one drawn glyph each) with their place on the line."""
    units: list[tuple[float, int, list[Glyph]]] = []
    for position, glyph in enumerate(glyphs):
        if units and units[-1][2][0].box == glyph.box:
            units[-1][2].append(glyph)
            continue
        centre = _centre(glyph)
        if not glyph.text.strip() and units:
            after = glyphs[position + 1] if position + 1 < len(glyphs) else None
            if after is None or after.box != glyph.box:
                centre = _space_place(glyphs, units[-1][2][-1], after)
        units.append((centre, -position, [glyph]))
    fixed = []
    for centre, order, unit in units:
        text = "".join(glyph.text for glyph in unit)
        # PDFium reverses the characters of a glyph that maps to a whole right-to-left word.
        word = len(text.strip()) >= 3 and _direction(text) == "R"
        fixed.append((centre, order, unit[::-1] if word else unit))
    return fixed


def _reverse_runs(units: list[list[Glyph]], flip: str) -> list[list[Glyph]]:
    """Reverse every maximal run of ``flip``-direction units (neutrals inside a run join it)."""
    result: list[list[Glyph]] = []
    run: list[list[Glyph]] = []
    pending: list[list[Glyph]] = []
    for unit in units:
        direction = _direction("".join(glyph.text for glyph in unit))
        if direction == flip:
            run.extend(pending)
            pending = []
            run.append(unit)
        elif direction == "N" and run:
            pending.append(unit)
        else:
            result.extend(run[::-1])
            result.extend(pending)
            run, pending = [], []
            result.append(unit)
    result.extend(run[::-1])
    result.extend(pending)
    return result


def logical_order(glyphs: list[Glyph]) -> list[Glyph]:
    """The glyphs of one horizontal line in reading order; unchanged without RTL letters."""
    if not has_rtl(glyphs):
        return glyphs
    units = [unit for _c, _o, unit in sorted(_units(glyphs), key=lambda u: (u[0], u[1]))]
    rtl = sum(_direction(glyph.text) == "R" for glyph in glyphs)
    ltr = sum(_direction(glyph.text) == "L" for glyph in glyphs)
    if rtl >= ltr:
        units = _reverse_runs(units[::-1], "L")
    else:
        units = _reverse_runs(units, "R")
    return [glyph for unit in units for glyph in unit]
