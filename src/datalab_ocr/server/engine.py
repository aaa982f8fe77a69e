"""Documents to pages: runs inside the worker processes.

A job is two steps, each a call into a worker: :func:`prepare_document` opens the upload
(converting Word/PowerPoint to PDF first) and counts its pages; :func:`process_pages` turns
some of those pages into page objects of the wire format. Splitting a document into chunks
of pages lets two workers share one long PDF, and keeps each call short so the pool can shut
down without waiting for a 7,000-page document.

PDF pages that carry a text layer give their lines from it (confidence 1.0); other pages are
rendered at ``render_scale`` (2.0 = 144 dpi by default) and OCRed. Coordinates are pixels of
that rendering; images keep their own pixel size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from datalab_ocr._models import OCRPage, TextLine
from datalab_ocr.server.formats import IMAGE, OFFICE, PDF
from datalab_ocr.server.office import OfficeConversionError, convert_to_pdf
from datalab_ocr.server.textlayer import PageGeometry, has_text_layer, text_layer_lines

__all__ = [
    "DocumentError",
    "PagesResult",
    "PreparedDocument",
    "base_versions",
    "engine_versions",
    "prepare_document",
    "process_pages",
]

logger = logging.getLogger(__name__)


class DocumentError(Exception):
    """The document cannot be processed; the message is shown to the client as the job error."""


class OCREngine(Protocol):
    """What the OCR engines have in common."""

    name: str

    def recognize(self, image: Image.Image, dpi: int) -> list[TextLine]: ...


@dataclass(frozen=True)
class PreparedDocument:
    """An opened upload: the file its pages are read from, its kind and its page count."""

    path: str
    kind: str
    page_count: int


@dataclass(frozen=True)
class PagesResult:
    """Page objects (wire-format dicts) and the library versions that produced them."""

    pages: list[dict[str, Any]]
    versions: dict[str, str]


_ENGINES: dict[str, OCREngine] = {}


def _engine(name: str) -> OCREngine:
    # One engine per worker process, kept between jobs: loading a model costs more than a page.
    if name not in _ENGINES:
        if name == "tesseract":
            from datalab_ocr.server.ocr_tesseract import TesseractEngine

            _ENGINES[name] = TesseractEngine()
        elif name == "rapidocr":
            from datalab_ocr.server.ocr_rapid import RapidEngine, RapidOCRMissingError

            try:
                _ENGINES[name] = RapidEngine()
            except RapidOCRMissingError as exc:
                raise DocumentError(str(exc)) from None
        else:
            raise DocumentError(f"Unknown OCR engine {name!r}")
    return _ENGINES[name]


def engine_versions(name: str) -> dict[str, str]:
    """The versions of an OCR engine's libraries, found without loading its model."""
    if name == "tesseract":
        from datalab_ocr.server.ocr_tesseract import tesseract_versions

        return tesseract_versions()
    if name == "rapidocr":
        from datalab_ocr.server.ocr_rapid import rapid_versions

        return rapid_versions()
    return {}


def base_versions() -> dict[str, str]:
    """The versions of the libraries every result depends on."""
    found = {}
    for package in ("pypdfium2", "pillow"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    try:
        import pypdfium2

        found["pdfium"] = str(pypdfium2.PDFIUM_INFO).split("@")[0]
    except ImportError:
        pass
    return found


def _open_pdf(path: str) -> Any:
    import pypdfium2

    try:
        return pypdfium2.PdfDocument(path)
    except pypdfium2.PdfiumError as exc:
        raise DocumentError(f"The PDF could not be opened: {exc}") from None


def _open_image(path: str, max_pixels: int) -> Image.Image:
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        image = Image.open(path)
    except (OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise DocumentError(f"The image could not be read: {exc}") from None
    width, height = image.size
    # Checked before any pixel is decoded: a 100-byte PNG can claim billions of pixels.
    if width * height > max_pixels:
        image.close()
        raise DocumentError(
            f"The image is {width}x{height} = {width * height} pixels, above this server's "
            f"limit of {max_pixels} pixels (decompression bomb guard)"
        )
    return image


def prepare_document(
    path: str, kind: str, *, suffix: str, max_image_pixels: int, office_timeout: float
) -> PreparedDocument:
    """Open an upload stored at ``path`` and count its pages.

    Office files are converted to a PDF next to the upload; the returned path is then the PDF.
    """
    if kind == OFFICE:
        source = Path(path).with_suffix(suffix)
        Path(path).rename(source)
        try:
            converted = convert_to_pdf(source, source.parent, timeout=office_timeout)
        except OfficeConversionError as exc:
            raise DocumentError(str(exc)) from None
        path, kind = str(converted), PDF
    if kind == PDF:
        pdf = _open_pdf(path)
        try:
            return PreparedDocument(path=path, kind=PDF, page_count=len(pdf))
        finally:
            pdf.close()
    if kind == IMAGE:
        with _open_image(path, max_image_pixels) as image:
            frames = int(getattr(image, "n_frames", 1)) if image.format == "TIFF" else 1
        return PreparedDocument(path=path, kind=IMAGE, page_count=frames)
    raise DocumentError(f"Unsupported document kind {kind!r}")


def _flatten(image: Image.Image) -> Image.Image:
    # Transparent pixels are black in L/RGB; scans and screenshots mean white paper there.
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode not in ("L", "RGB"):
        return image.convert("RGB")
    return image


def _page(number: int, width: float, height: float, lines: list[TextLine]) -> dict[str, Any]:
    page = OCRPage(page=number, image_bbox=[0.0, 0.0, width, height], text_lines=lines)
    return page.model_dump(mode="json", exclude_none=True)


def _pdf_pages(
    path: str, indices: list[int], engine_name: str, scale: float
) -> list[dict[str, Any]]:
    pdf = _open_pdf(path)
    dpi = round(72 * scale)
    pages = []
    try:
        for index in indices:
            page = pdf[index]
            try:
                width, height = page.get_size()
                textpage = page.get_textpage()
                try:
                    # Rotated pages go through OCR: the text layer's boxes are unrotated.
                    if page.get_rotation() == 0 and has_text_layer(textpage):
                        left, _bottom, _right, top = page.get_cropbox()
                        geometry = PageGeometry(left=left, top=top, scale=scale)
                        lines = text_layer_lines(textpage, geometry)
                        size = (round(width * scale), round(height * scale))
                    else:
                        image = page.render(scale=scale).to_pil()
                        engine = _engine(engine_name)
                        lines = engine.recognize(image, dpi)
                        size = image.size
                finally:
                    textpage.close()
            finally:
                page.close()
            pages.append(_page(index + 1, float(size[0]), float(size[1]), lines))
    finally:
        pdf.close()
    return pages


def _image_pages(
    path: str, indices: list[int], engine_name: str, max_pixels: int
) -> list[dict[str, Any]]:
    pages = []
    with _open_image(path, max_pixels) as image:
        for index in indices:
            image.seek(index)
            try:
                frame = _flatten(image)
                frame.load()
            except (OSError, SyntaxError) as exc:
                raise DocumentError(f"The image could not be decoded: {exc}") from None
            dpi_info = image.info.get("dpi", (0, 0))
            dpi = round(float(dpi_info[0])) if dpi_info and dpi_info[0] else 150
            engine = _engine(engine_name)
            lines = engine.recognize(frame, dpi)
            pages.append(_page(index + 1, float(frame.width), float(frame.height), lines))
    return pages


def process_pages(
    document: PreparedDocument,
    indices: list[int],
    *,
    engine: str,
    render_scale: float,
    max_image_pixels: int,
) -> PagesResult:
    """The page objects of the given 0-based pages; ``page`` is the 1-based original number."""
    if document.kind == PDF:
        pages = _pdf_pages(document.path, indices, engine, render_scale)
    else:
        pages = _image_pages(document.path, indices, engine, max_image_pixels)
    return PagesResult(pages=pages, versions={**base_versions(), **engine_versions(engine)})
