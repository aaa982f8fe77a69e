"""Pictures of a document's pages for the OCR report, rendered locally and kept small.

PDF pages are rendered with PDFium (pypdfium2) in their displayed orientation, the way the
local server renders them for OCR; images are read with Pillow, one frame per page for
multi-frame TIFF and GIF, as stored (no EXIF rotation: the service reads the pixels as they
are, and its boxes are in those pixels). Each page becomes a WebP data URI whose longest
side is at most ``max_side`` pixels: a page at 1400 pixels weighs 40-190 kB.

Both libraries come with the ``report`` extra (and the ``server`` extra, which has them).
A page that cannot be pictured gets a :class:`NoPicture` saying why, and the report draws
its boxes on a blank page: Office files (picturing them would need LibreOffice), a PDF that
PDFium cannot open (the service may have repaired it first), a page it cannot render, an
image Pillow cannot decode.
"""

from __future__ import annotations

import base64
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._extras import require_extra
from ._wording import counted

__all__ = [
    "NoPicture",
    "PageImage",
    "PageImageError",
    "PageSource",
    "page_images",
    "require_libraries",
]

logger = logging.getLogger("datalab_ocr")

PageSource = str | os.PathLike[str] | bytes
"""A document to picture: a path, or its bytes."""

_WEBP_QUALITY = 60
_WEBP_METHOD = 0  # the fastest: 4x faster than 3 for 30 % more bytes on text pages (measured)


def require_libraries() -> tuple[Any, Any]:
    """Pillow's ``Image`` module and ``pypdfium2``; an ImportError naming the ``report`` extra
    when either is missing. Imported on use, so the CLI can name the extra before any OCR."""
    with require_extra(__name__, "report", "PIL", "Pillow"):
        from PIL import Image
    with require_extra(__name__, "report", "pypdfium2", "PDFium (pypdfium2)"):
        import pypdfium2
    return Image, pypdfium2


class PageImageError(ValueError):
    """A page that cannot be pictured: the file is unreadable, or has no such page."""


@dataclass(frozen=True, slots=True)
class PageImage:
    """One page's picture: a ``data:`` URI and its size in pixels."""

    data_uri: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class NoPicture:
    """Why a page has no picture."""

    reason: str


def page_images(
    source: PageSource, page_indices: list[int], *, name: str, max_side: int
) -> Iterator[PageImage | NoPicture]:
    """Picture each 0-based page of ``source`` in ``page_indices``, in that order.

    Yields a :class:`NoPicture` for a page that cannot be pictured (see the module's
    docstring). Raises :class:`PageImageError` naming ``name`` for a file that cannot be read
    at all, or a page it does not have (a result that belongs to another file).
    """
    require_libraries()
    try:
        head = _head(source)
    except OSError as error:
        raise PageImageError(f"{name}: cannot read it ({error.strerror or error})") from None
    if b"%PDF-" in head[:1024]:
        yield from _pdf_pages(source, page_indices, name, max_side)
    elif _looks_like_image(head):
        yield from _image_pages(source, page_indices, name, max_side)
    elif head.startswith((_ZIP, _OLE2)):
        reason = "only PDFs and images are pictured, not Word or PowerPoint files"
        for _ in page_indices:
            yield NoPicture(reason)
    else:
        raise PageImageError(
            f"{name}: not a PDF, an image or an Office file, so not what this result was read "
            "from: give the file that was OCRed"
        )


_ZIP = b"PK\x03\x04"  # .docx, .pptx
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .doc, .ppt


def _head(source: PageSource) -> bytes:
    if isinstance(source, bytes):
        return source[:1024]
    with open(source, "rb") as stream:
        return stream.read(1024)


def _looks_like_image(head: bytes) -> bool:
    magic = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
    return head.startswith(magic) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _pdf_pages(
    source: PageSource, page_indices: list[int], name: str, max_side: int
) -> Iterator[PageImage | NoPicture]:
    _, pypdfium2 = require_libraries()
    try:
        document = pypdfium2.PdfDocument(source if isinstance(source, bytes) else Path(source))
    except pypdfium2.PdfiumError as error:
        logger.warning("%s: no page pictures, PDFium cannot open it (%s)", name, error)
        for _ in page_indices:
            yield NoPicture(f"PDFium cannot open this file ({error})")
        return
    try:
        count = len(document)
        for index in page_indices:
            if not 0 <= index < count:
                raise PageImageError(
                    f"{name} has {count} pages, but the result has page index {index}: "
                    "is the result of another file?"
                )
            page = document[index]
            try:
                # get_size() is the displayed size: /Rotate is already applied.
                width, height = page.get_size()
                scale = max_side / max(width, height, 1.0)
                image = page.render(scale=scale).to_pil()
            except pypdfium2.PdfiumError as error:
                logger.warning("%s: page %d cannot be rendered (%s)", name, index + 1, error)
                yield NoPicture(f"PDFium cannot render this page ({error})")
                continue
            finally:
                page.close()
            yield _encode(image)
    finally:
        document.close()


def _image_pages(
    source: PageSource, page_indices: list[int], name: str, max_side: int
) -> Iterator[PageImage | NoPicture]:
    pil, _ = require_libraries()
    unreadable = (OSError, SyntaxError, ValueError, pil.DecompressionBombError)
    try:
        # Pillow's own guard refuses decompression bombs (over 2 x MAX_IMAGE_PIXELS).
        image = pil.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except unreadable as error:
        logger.warning("%s: no page pictures, Pillow cannot read it (%s)", name, error)
        for _ in page_indices:
            yield NoPicture(f"Pillow cannot read this image ({error})")
        return
    with image:
        frames = getattr(image, "n_frames", 1)
        for index in page_indices:
            if not 0 <= index < frames:
                raise PageImageError(
                    f"{name} has {counted(frames, 'frame')}, but the result "
                    f"has page index {index}: is the result of another file?"
                )
            try:
                image.seek(index)
                frame = _flatten(image)
                frame.thumbnail((max_side, max_side), pil.Resampling.LANCZOS)
            except unreadable as error:
                logger.warning("%s: frame %d cannot be decoded (%s)", name, index + 1, error)
                yield NoPicture(f"Pillow cannot decode this frame ({error})")
                continue
            yield _encode(frame)


def _flatten(image: Any) -> Any:
    pil, _ = require_libraries()
    # Transparent pixels mean white paper (as the server reads them), not black.
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        background = pil.new("RGBA", rgba.size, (255, 255, 255, 255))
        return pil.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "1":
        return image.convert("L")  # 1-bit scans: grey levels let the thumbnail stay legible
    if image.mode not in ("L", "RGB"):
        return image.convert("RGB")
    return image.copy()


def _encode(image: Any) -> PageImage:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=_WEBP_QUALITY, method=_WEBP_METHOD)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return PageImage(f"data:image/webp;base64,{encoded}", image.width, image.height)
