"""Which kind of document an upload is, from its first bytes, its name and its content type."""

from __future__ import annotations

from pathlib import PurePath

__all__ = ["IMAGE", "OFFICE", "PDF", "UnsupportedFileError", "detect_kind", "office_suffix"]

PDF = "pdf"
IMAGE = "image"
OFFICE = "office"

_EXTENSIONS = {
    ".pdf": PDF,
    ".png": IMAGE,
    ".jpg": IMAGE,
    ".jpeg": IMAGE,
    ".webp": IMAGE,
    ".gif": IMAGE,
    ".tif": IMAGE,
    ".tiff": IMAGE,
    ".doc": OFFICE,
    ".docx": OFFICE,
    ".ppt": OFFICE,
    ".pptx": OFFICE,
}
_CONTENT_TYPES = {
    "application/pdf": PDF,
    "image/png": IMAGE,
    "image/jpeg": IMAGE,
    "image/webp": IMAGE,
    "image/gif": IMAGE,
    "image/tiff": IMAGE,
    "application/msword": OFFICE,
    "application/vnd.ms-powerpoint": OFFICE,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": OFFICE,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": OFFICE,
}
_OFFICE_CONTENT_SUFFIX = {
    "application/msword": ".doc",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
}


class UnsupportedFileError(ValueError):
    """The upload is not a PDF, an image or a Word/PowerPoint file (HTTP 400)."""


def _sniff(head: bytes) -> str | None:
    if b"%PDF-" in head[:1024]:
        return PDF
    image_magic = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00")
    if head.startswith(image_magic) or head.startswith(b"MM\x00*"):
        return IMAGE
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return IMAGE
    return None


def detect_kind(head: bytes, filename: str | None, content_type: str | None) -> str:
    """The kind of an upload (:data:`PDF`, :data:`IMAGE` or :data:`OFFICE`).

    The first bytes win over the name, and the name over the content type, because clients
    often send ``application/octet-stream``. Office files are zip or OLE containers, which
    say nothing by themselves, so they are recognised by name or content type. A file that
    claims to be a PDF but does not look like one is still a PDF: opening it fails the job
    with a readable error rather than refusing it at the door.
    """
    if not head:
        raise UnsupportedFileError("The uploaded file is empty")
    sniffed = _sniff(head)
    if sniffed is not None:
        return sniffed
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in _CONTENT_TYPES:
        return _CONTENT_TYPES[mime]
    shown = filename or "the upload"
    raise UnsupportedFileError(
        f"Unsupported file type for {shown!r} ({mime or 'no content type'}): send a PDF, "
        "an image (png, jpg, webp, gif, tiff) or a Word/PowerPoint file (doc, docx, ppt, pptx)"
    )


def office_suffix(filename: str | None, content_type: str | None) -> str:
    """The file extension LibreOffice should see for an office upload (it picks its filter)."""
    suffix = PurePath(filename or "").suffix.lower()
    if _EXTENSIONS.get(suffix) == OFFICE:
        return suffix
    mime = (content_type or "").split(";")[0].strip().lower()
    return _OFFICE_CONTENT_SUFFIX.get(mime, ".docx")
