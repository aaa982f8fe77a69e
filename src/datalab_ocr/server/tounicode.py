"""Glyphs a font's ToUnicode map gives no text, which PDFium reads as characters anyway.

A ToUnicode entry with empty text (``<7e> <>``) says the glyph carries no text: a mark drawn
apart from the cluster that already spelled it out (HTML-to-PDF shapers write these for
Arabic and Indic clusters), a decoration, a glyph a producer chose to hide from copy and
paste. PDFium ignores such entries: it reads the glyph from the font's encoding (a code
without a name there becomes a bullet) or, for a composite font, takes the code itself as
the character, mostly without flagging it, so stray characters land in the words. PDFium's
API shows neither glyph codes nor ToUnicode maps; pypdf reads the maps.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from datalab_ocr.server.repair import pypdf_quiet

__all__ = ["SilentGlyphReader"]

logger = logging.getLogger(__name__)

_BFCHAR = re.compile(rb"beginbfchar(.*?)endbfchar", re.S)
_EMPTY_ENTRY = re.compile(rb"<([0-9A-Fa-f]{1,8})>\s*<\s*>")
_NOTHING: frozenset[tuple[bytes, int]] = frozenset()


class SilentGlyphReader:
    """The silent glyphs of one PDF's pages, read once per font as pages ask for them."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._reader: Any = None
        self._broken = False
        self._fonts: dict[int, frozenset[tuple[bytes, int]]] = {}

    def for_page(self, index: int) -> frozenset[tuple[bytes, int]]:
        """``(font name, code)`` of the glyphs of page ``index`` (0-based) whose ToUnicode
        text is empty; font names as PDFium gives them (the BaseFont, subset tag included,
        for a composite font its own and its descendant's). Empty when pypdf cannot read
        the page: PDFium's reading then stands as it is."""
        if self._broken:
            return _NOTHING
        try:
            with pypdf_quiet():
                if self._reader is None:
                    from pypdf import PdfReader

                    self._reader = PdfReader(self._path)
                page = self._reader.pages[index]
                found: set[tuple[bytes, int]] = set()
                for key, font in _fonts(page.get("/Resources"), depth=0):
                    if key is None:  # a font written inline in the page: nothing to share
                        found |= _empty_entries(font)
                        continue
                    if key not in self._fonts:
                        self._fonts[key] = _empty_entries(font)
                    found |= self._fonts[key]
            return frozenset(found)
        except Exception as error:  # pypdf raises many kinds on a damaged file
            logger.debug("ToUnicode maps of page %d not read: %s", index + 1, error)
            self._broken = True
            return _NOTHING


def _fonts(resources: Any, depth: int) -> list[tuple[Any, Any]]:
    """``(key, font dictionary)`` of ``resources`` and of the forms it draws, two levels
    deep; the key is the font's object number, None for a font written inline (an object's
    ``id`` would not do: pypdf builds inline objects afresh, and ids of freed ones recur)."""
    if resources is None or depth > 2:
        return []
    resources = resources.get_object()
    fonts = []
    for ref in (resources.get("/Font") or {}).values():
        font = ref.get_object()
        fonts.append((getattr(ref, "idnum", None), font))
    for ref in (resources.get("/XObject") or {}).values():
        form = ref.get_object()
        if form.get("/Subtype") == "/Form":
            fonts += _fonts(form.get("/Resources"), depth + 1)
    return fonts


def _empty_entries(font: Any) -> frozenset[tuple[bytes, int]]:
    """``(font name, character PDFium gives)`` for each code the font's map leaves empty."""
    stream = font.get("/ToUnicode")
    if stream is None or not hasattr(stream.get_object(), "get_data"):
        return _NOTHING
    data = stream.get_object().get_data()
    codes = {
        int(code, 16) for block in _BFCHAR.findall(data) for code in _EMPTY_ENTRY.findall(block)
    }
    if not codes:
        return _NOTHING
    names = {str(font.get("/BaseFont", "")).lstrip("/")}
    for descendant in font.get("/DescendantFonts") or []:
        names.add(str(descendant.get_object().get("/BaseFont", "")).lstrip("/"))
    chars = {char for code in codes for char in _as_pdfium_reads(font, code)}
    return frozenset(
        (name.encode("latin-1", "replace"), char) for name in names if name for char in chars
    )


def _as_pdfium_reads(font: Any, code: int) -> set[int]:
    """What PDFium returns for a glyph whose map entry is empty: a composite font's code as
    it is; a simple font's character from its encoding (WinAnsi's: a bullet for a code it
    leaves undefined), or the code where the encoding is another or changed."""
    reads = {code}
    encoding = font.get("/Encoding")
    if encoding is not None and not isinstance(encoding, str):
        encoding = encoding.get_object()
    if font.get("/Subtype") != "/Type0" and encoding == "/WinAnsiEncoding" and code < 256:
        try:
            reads.add(ord(bytes([code]).decode("cp1252")))
        except UnicodeDecodeError:
            reads.add(0x2022)
    return reads
