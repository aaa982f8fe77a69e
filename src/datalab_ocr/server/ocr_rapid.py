"""Line-level OCR with RapidOCR (PP-OCR models on onnxruntime), behind the ``rapidocr`` extra.

Heavier and slower than Tesseract on clean print, better on photos and mixed layouts. The
models ship inside the ``rapidocr-onnxruntime`` wheel, so nothing is downloaded at run time.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from PIL import Image

from datalab_ocr._models import TextLine
from datalab_ocr.server.layout import order_lines

__all__ = ["RapidEngine", "RapidOCRMissingError", "rapid_versions"]

INSTALL_HINT = "pip install 'datalab-ocr[rapidocr]'"


def rapid_versions() -> dict[str, str]:
    """The versions of RapidOCR and onnxruntime, when they are installed."""
    found: dict[str, str] = {}
    for package in ("rapidocr-onnxruntime", "onnxruntime"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


class RapidOCRMissingError(RuntimeError):
    """The ``rapidocr`` engine was chosen but its package is not installed."""


class RapidEngine:
    """Recognises the text lines of a page image with RapidOCR."""

    name = "rapidocr"

    def __init__(self) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise RapidOCRMissingError(
                f"The rapidocr engine needs rapidocr-onnxruntime: {INSTALL_HINT}"
            ) from exc
        self._ocr: Any = RapidOCR()

    def recognize(self, image: Image.Image, dpi: int) -> list[TextLine]:
        """The text lines of ``image`` in reading order (columns whole, left to right).

        RapidOCR finds each line on its own and sorts them by height alone, which pairs up
        the rows of side-by-side columns; its boxes are already four clockwise corners.
        """
        import numpy as np

        del dpi  # the detector works on pixels alone
        result, _elapsed = self._ocr(np.asarray(image.convert("RGB")))
        lines: list[TextLine] = []
        for box, text, score in result or []:
            polygon = [[float(x), float(y)] for x, y in box]
            xs = [point[0] for point in polygon]
            ys = [point[1] for point in polygon]
            lines.append(
                TextLine(
                    text=str(text),
                    confidence=round(float(score), 4),
                    polygon=polygon,
                    bbox=[min(xs), min(ys), max(xs), max(ys)],
                )
            )
        return order_lines(lines)
