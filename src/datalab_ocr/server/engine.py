"""Documents to pages: runs inside the worker processes.

A job is two steps, each a call into a worker: :func:`prepare_document` opens the upload
(converting Word/PowerPoint to PDF first) and counts its pages; :func:`process_pages` turns
some of those pages into page objects of the wire format. Splitting a document into chunks
of pages lets two workers share one long PDF, and keeps each call short so the pool can shut
down without waiting for a 7,000-page document.

PDF pages that carry a usable text layer give their lines from it (see
:mod:`~datalab_ocr.server.textlayer`); other pages, and pages whose layer is garbage, are
rendered at ``render_scale`` (2.0 = 144 dpi by default) and OCRed. Coordinates are pixels of
that rendering, in the page's displayed orientation; images keep their own pixel size. A PDF
PDFium cannot open is rewritten by pypdf and tried once more; an encrypted one fails saying
how to decrypt it.
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


_ENCRYPTED = (
    "The PDF is encrypted with a password, and this API takes none. Decrypt it first, e.g. "
    "`qpdf --decrypt --password=PASSWORD in.pdf out.pdf`, or in Python with pypdf: "
    "`reader = PdfReader(path); reader.decrypt(password)`, then write its pages with "
    "`PdfWriter`; then send the decrypted file."
)


def _open_pdf(path: str) -> Any:
    import pypdfium2

    try:
        return pypdfium2.PdfDocument(path)
    except pypdfium2.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pypdfium2.raw.FPDF_ERR_PASSWORD:
            raise DocumentError(_ENCRYPTED) from None
        raise DocumentError(f"The PDF could not be opened: {exc}") from None


def _repaired(path: str) -> str | None:
    """The PDF at ``path`` rewritten by pypdf next to it, or None if pypdf cannot read it."""
    try:
        from pypdf import PdfReader, PdfWriter
    except ImportError:
        return None
    target = f"{path}.repaired.pdf"
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            return None
        writer = PdfWriter()
        for page in reader.pages:
            writer.add_page(page)
        with open(target, "wb") as handle:
            writer.write(handle)
    except Exception:  # pypdf raises many kinds on broken files; any of them means no repair
        logger.debug("pypdf could not rewrite %s", path, exc_info=True)
        return None
    return target


def _open_or_repair(path: str) -> tuple[Any, str]:
    """The opened PDF and the path it was read from (the repaired copy, if one was needed)."""
    try:
        return _open_pdf(path), path
    except DocumentError as exc:
        if str(exc) == _ENCRYPTED:
            raise
        repaired = _repaired(path)
        if repaired is None:
            raise
        logger.info("PDFium could not open %s; opened the copy pypdf rewrote", path)
        return _open_pdf(repaired), repaired


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
        pdf, path = _open_or_repair(path)
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
) -> tuple[list[dict[str, Any]], bool]:
    """The page objects, and whether any page went through OCR."""
    pdf = _open_pdf(path)
    dpi = round(72 * scale)
    pages = []
    ocr_ran = False
    try:
        for index in indices:
            page = pdf[index]
            try:
                textpage = page.get_textpage()
                try:
                    geometry = PageGeometry.for_page(page, scale)
                    layer = None
                    if has_text_layer(textpage):
                        layer = text_layer_lines(textpage, geometry)
                    if layer is not None:
                        lines, size = layer, geometry.size
                    else:
                        ocr_ran = True
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
    return pages, ocr_ran


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
        pages, ocr_ran = _pdf_pages(document.path, indices, engine, render_scale)
    else:
        pages, ocr_ran = _image_pages(document.path, indices, engine, max_image_pixels), True
    # Only the engines that produced these pages: a text-layer page never saw the OCR engine.
    versions = {**base_versions(), **(engine_versions(engine) if ocr_ran else {})}
    return PagesResult(pages=pages, versions=versions)
