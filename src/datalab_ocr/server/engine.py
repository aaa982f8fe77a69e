"""Documents to pages: runs inside the worker processes.

A job is two steps, each a call into a worker: :func:`prepare_document` opens the upload
(converting Word/PowerPoint to PDF first) and counts its pages; :func:`process_pages` turns
some of those pages into page objects of the wire format. Splitting a document into chunks
of pages lets two workers share one long PDF, and keeps each call short so the pool can shut
down without waiting for a 7,000-page document.

PDF pages that carry a usable text layer give their lines from it (see
:mod:`~datalab_ocr.server.textlayer`), plus the OCR of their images that carry no text (a scan
with a stamp), merged in reading order; other pages, and pages whose layer is garbage, are
rendered at ``render_scale`` (2.0 = 144 dpi by default) and OCRed. Every rendering stays within
``max_render_pixels`` (a lower scale for huge pages; see :mod:`.layout`). Coordinates are
pixels of that rendering, in the page's displayed orientation; images keep their own pixel
size. A PDF PDFium cannot open is rewritten by pypdf (see :mod:`.repair`) and tried once
more; an encrypted one fails saying how to decrypt it.
"""

from __future__ import annotations

import functools
import logging
import mmap
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageDraw

from datalab_ocr._models import OCRPage, TextLine
from datalab_ocr.server.formats import IMAGE, OFFICE, PDF
from datalab_ocr.server.layout import (
    DEFAULT_MAX_RENDER_PIXELS,
    MIN_OCR_DPI,
    MIN_REGION_LINE_CONFIDENCE,
    fit_scale,
    image_regions,
    line_box,
    merge_reading_order,
    regions_to_ocr,
    scale_lines,
    shift_lines,
)
from datalab_ocr.server.office import OfficeConversionError, convert_to_pdf
from datalab_ocr.server.repair import repaired_copy
from datalab_ocr.server.textlayer import (
    PageGeometry,
    SilentGlyphs,
    has_text_layer,
    text_layer_lines,
)
from datalab_ocr.server.tounicode import SilentGlyphReader

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


def base_versions(*, pdf: bool = True) -> dict[str, str]:
    """The versions of the libraries a result depends on before any OCR: Pillow always, and
    PDFium (with its binding) when the document was a PDF."""
    found = {}
    for package in ("pypdfium2", "pillow") if pdf else ("pillow",):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    if pdf:
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


def _declares_encryption(path: str) -> bool:
    """Whether the file holds an encryption dictionary (``/Encrypt``), as every encrypted
    PDF's trailer names one."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return False
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(b"/Encrypt") != -1


def _open_pdf(path: str) -> Any:
    import pypdfium2

    try:
        return pypdfium2.PdfDocument(path)
    except pypdfium2.PdfiumError as exc:
        if getattr(exc, "err_code", None) != pypdfium2.raw.FPDF_ERR_PASSWORD:
            raise DocumentError(f"The PDF could not be opened: {exc}") from None
        # PDFium's last error outlives the document it was about: a damaged file read after
        # an encrypted one in the same worker fails with the stale "password" error.
        if _declares_encryption(path):
            raise DocumentError(_ENCRYPTED) from None
        raise DocumentError("The PDF could not be opened: PDFium cannot read it") from None


def _open_or_repair(path: str) -> tuple[Any, str]:
    """The opened PDF and the path it was read from (the repaired copy, if one was needed)."""
    try:
        return _open_pdf(path), path
    except DocumentError as exc:
        if str(exc) == _ENCRYPTED:
            raise
        repaired = repaired_copy(path)
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


def _too_coarse(number: int, width: float, height: float, max_pixels: int) -> DocumentError:
    dpi = 72 * fit_scale(width, height, 1.0, max_pixels)
    return DocumentError(
        f"Page {number} is {width / 72:.0f} x {height / 72:.0f} inches: within this server's "
        f"render limit of {max_pixels:,} pixels it would be read at {dpi:.0f} dpi, below the "
        f"{MIN_OCR_DPI} dpi that OCR needs. Crop or scale the page down, or split it."
    )


def _render(
    page: Any, number: int, scale: float, crop: tuple[float, float, float, float]
) -> Image.Image:
    import pypdfium2

    try:
        image: Image.Image = page.render(scale=scale, crop=crop).to_pil()
    except (pypdfium2.PdfiumError, MemoryError) as exc:
        raise DocumentError(f"Page {number} could not be rendered: {exc}") from None
    return image


def _ocr_regions(
    page: Any,
    number: int,
    text_lines: list[TextLine],
    geometry: PageGeometry,
    size: tuple[int, int],
    engine_name: str,
) -> list[TextLine]:
    """The text-layer lines plus the OCR of the page's images that carry no text layer."""
    regions = [
        (region, geometry.to_pixels((region.left, region.bottom, region.right, region.top)))
        for region in image_regions(page)
    ]
    boxes = regions_to_ocr(regions, text_lines)
    if not boxes:
        return text_lines
    scale = geometry.scale
    if 72 * scale < MIN_OCR_DPI:
        logger.warning("page too large to OCR its images at %d dpi or more", MIN_OCR_DPI)
        return text_lines
    width, height = size
    blocks = []
    for box in boxes:
        x0, y0 = max(0.0, box[0]), max(0.0, box[1])
        x1, y1 = min(float(width), box[2]), min(float(height), box[3])
        if x1 - x0 < 8 or y1 - y0 < 8:
            continue
        crop = (x0 / scale, (height - y1) / scale, (width - x1) / scale, y0 / scale)
        image = _render(page, number, scale, crop)
        # The text layer drawn over the image (the stamp itself) is already read: blank it,
        # so OCR neither repeats it nor merges it with the scan's lines.
        draw = ImageDraw.Draw(image)
        for line in text_lines:
            lx0, ly0, lx1, ly1 = line_box(line)
            if lx1 > x0 and lx0 < x1 and ly1 > y0 and ly0 < y1:
                blank = (lx0 - x0 - 1, ly0 - y0 - 1, lx1 - x0 + 1, ly1 - y0 + 1)
                draw.rectangle(blank, fill="white")
        found = _engine(engine_name).recognize(image, round(72 * scale))
        kept = [
            line
            for line in found
            if (line.confidence or 0.0) >= MIN_REGION_LINE_CONFIDENCE
            and any(char.isalnum() for char in line.text)
        ]
        blocks.append(shift_lines(kept, x0, y0))
    return merge_reading_order(text_lines, blocks)


def _pdf_page(
    page: Any,
    number: int,
    engine_name: str,
    scale: float,
    max_pixels: int,
    silent: SilentGlyphs | None = None,
) -> tuple[dict[str, Any], bool]:
    """One page object, and whether OCR ran on it (for the whole page or for its images)."""
    width, height = page.get_size()
    # Pages render within a pixel budget: a 200-inch page at 144 dpi would need 3 GB.
    scale = fit_scale(width, height, scale, max_pixels)
    textpage = page.get_textpage()
    try:
        geometry = PageGeometry.for_page(page, scale)
        layer = text_layer_lines(textpage, geometry, silent) if has_text_layer(textpage) else None
        if layer is not None:
            size = geometry.size
            lines = _ocr_regions(page, number, layer, geometry, size, engine_name)
            ocr_ran = len(lines) != len(layer)
        else:
            if 72 * scale < MIN_OCR_DPI:
                raise _too_coarse(number, width, height, max_pixels)
            image = _render(page, number, scale, (0, 0, 0, 0))
            lines = _engine(engine_name).recognize(image, round(72 * scale))
            size, ocr_ran = image.size, True
    finally:
        textpage.close()
    return _page(number, float(size[0]), float(size[1]), lines), ocr_ran


def _pdf_pages(
    path: str, indices: list[int], engine_name: str, scale: float, max_pixels: int
) -> tuple[list[dict[str, Any]], bool]:
    """The page objects, and whether any page went through OCR."""
    pdf = _open_pdf(path)
    silent_glyphs = SilentGlyphReader(path)
    pages = []
    ocr_ran = False
    try:
        for index in indices:
            page = pdf[index]
            try:
                silent = functools.partial(silent_glyphs.for_page, index)
                result, ran = _pdf_page(page, index + 1, engine_name, scale, max_pixels, silent)
                pages.append(result)
                ocr_ran = ocr_ran or ran
            finally:
                page.close()
    finally:
        pdf.close()
    return pages, ocr_ran


def _recognize_within(
    engine: OCREngine, frame: Image.Image, dpi: int, max_pixels: int
) -> list[TextLine]:
    """OCR of ``frame``, on a downscaled copy when it is over the render budget."""
    pixels = frame.width * frame.height
    if pixels <= max_pixels:
        return engine.recognize(frame, dpi)
    factor = fit_scale(frame.width, frame.height, 1.0, max_pixels)
    size = (max(1, int(frame.width * factor)), max(1, int(frame.height * factor)))
    small = frame.resize(size, Image.Resampling.LANCZOS)
    lines = engine.recognize(small, max(1, round(dpi * factor)))
    return scale_lines(lines, frame.width / size[0])


def _image_pages(
    path: str, indices: list[int], engine_name: str, max_pixels: int, max_render_pixels: int
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
            lines = _recognize_within(_engine(engine_name), frame, dpi, max_render_pixels)
            pages.append(_page(index + 1, float(frame.width), float(frame.height), lines))
    return pages


def process_pages(
    document: PreparedDocument,
    indices: list[int],
    *,
    engine: str,
    render_scale: float,
    max_image_pixels: int,
    max_render_pixels: int = DEFAULT_MAX_RENDER_PIXELS,
) -> PagesResult:
    """The page objects of the given 0-based pages; ``page`` is the 1-based original number.

    Pages are rendered (and large images OCRed) within ``max_render_pixels``: bigger pages at
    a lower resolution, and a page that would fall below :data:`MIN_OCR_DPI` fails its job.
    """
    if document.kind == PDF:
        pages, ocr_ran = _pdf_pages(document.path, indices, engine, render_scale, max_render_pixels)
    else:
        pages = _image_pages(document.path, indices, engine, max_image_pixels, max_render_pixels)
        ocr_ran = True
    # Only the engines that produced these pages: a text-layer page never saw the OCR engine.
    versions = {
        **base_versions(pdf=document.kind == PDF),
        **(engine_versions(engine) if ocr_ran else {}),
    }
    return PagesResult(pages=pages, versions=versions)
