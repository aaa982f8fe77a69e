"""Turning what a caller passes as a file into an upload, refusing bad input before sending.

The file type is decided by the content (magic bytes), the name serving only as a hint where
the content is ambiguous (old binary Office files). Uploads are re-opened for every attempt
and streamed from disk, so a retry sends the whole file again and a 200 MB file is never read
into memory.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePath
from typing import IO, BinaryIO, Union

from ._exceptions import InvalidInputError
from ._pdf import TAIL_BYTES, PageCounter, truncation_problem

__all__ = ["MAX_FILE_BYTES", "FileInput", "FileKind", "Upload", "prepare_upload", "sniff_kind"]

MAX_FILE_BYTES = 200 * 1024 * 1024
"""The largest file the service accepts (200 MB)."""

FileInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], "Upload"]
"""A path, the bytes of a file (with ``filename=``), a binary file object, or an
:class:`Upload` already checked by :func:`prepare_upload`."""

_HEAD_BYTES = 8192
_PDF_HEADER = re.compile(rb"%PDF-\d\.\d")
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileKind:
    """A file type the service accepts."""

    name: str
    mime_type: str
    extensions: tuple[str, ...]

    @property
    def extension(self) -> str:
        """The usual file name extension, with its dot."""
        return self.extensions[0]


PDF = FileKind("PDF", "application/pdf", (".pdf",))
PNG = FileKind("PNG", "image/png", (".png",))
JPEG = FileKind("JPEG", "image/jpeg", (".jpg", ".jpeg", ".jpe"))
WEBP = FileKind("WEBP", "image/webp", (".webp",))
GIF = FileKind("GIF", "image/gif", (".gif",))
TIFF = FileKind("TIFF", "image/tiff", (".tiff", ".tif"))
DOC = FileKind("Word 97-2003", "application/msword", (".doc",))
PPT = FileKind("PowerPoint 97-2003", "application/vnd.ms-powerpoint", (".ppt",))
DOCX = FileKind(
    "Word",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    (".docx",),
)
PPTX = FileKind(
    "PowerPoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    (".pptx",),
)
SUPPORTED_KINDS = (PDF, PNG, JPEG, WEBP, GIF, TIFF, DOC, PPT, DOCX, PPTX)

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SUPPORTED_TEXT = "PDF, Word (doc, docx), PowerPoint (ppt, pptx), PNG, JPEG, WEBP, GIF or TIFF"


def sniff_kind(head: bytes, name_hint: str, open_whole: Callable[[], BinaryIO]) -> FileKind | None:
    """The kind of a file from its first bytes, or None when the service would not take it.

    ``open_whole`` opens the whole file; it is used only for containers (zip, OLE2) whose
    first bytes do not tell Word from PowerPoint.
    """
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return TIFF
    if head.startswith(_OLE2):
        return _sniff_ole2(name_hint, open_whole)
    if head.startswith(b"PK\x03\x04"):
        return _sniff_ooxml(open_whole)
    return PDF if _late_pdf_header(head) else None


def _late_pdf_header(head: bytes) -> bool:
    """A PDF header after some leading junk, as PDF readers accept in the first kilobyte.

    Only binary junk counts (a mail or MacBinary wrapper): a text file that merely mentions
    ``%PDF-1.4`` is still text.
    """
    match = _PDF_HEADER.search(head[:1024])
    if match is None:
        return False
    junk = head[: match.start()]
    return any(byte < 9 or 13 < byte < 32 or byte > 126 for byte in junk)


def _sniff_ole2(name_hint: str, open_whole: Callable[[], BinaryIO]) -> FileKind | None:
    suffix = PurePath(name_hint).suffix.lower()
    if suffix in DOC.extensions:
        return DOC
    if suffix in PPT.extensions:
        return PPT
    # Without a telling name, look for the stream names in the compound file's directory;
    # they are stored in UTF-16LE.
    with open_whole() as stream:
        data = stream.read(4 * _CHUNK)
    if "WordDocument".encode("utf-16-le") in data:
        return DOC
    if "PowerPoint Document".encode("utf-16-le") in data:
        return PPT
    return None


def _sniff_ooxml(open_whole: Callable[[], BinaryIO]) -> FileKind | None:
    try:
        with open_whole() as stream, zipfile.ZipFile(stream) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return None
    if any(name.startswith("word/") for name in names):
        return DOCX
    if any(name.startswith("ppt/") for name in names):
        return PPTX
    return None


@dataclass(frozen=True)
class Upload:
    """A validated file, ready to be sent as many times as retries need.

    ``display_name`` names the file in errors, logs and metadata (the path as given, or the
    file name); ``filename`` is what is sent in the multipart body.
    """

    display_name: str
    filename: str
    kind: FileKind
    size: int
    path: Path | None = None
    data: bytes | None = None

    def open(self) -> BinaryIO:
        """A fresh binary stream positioned at the start of the file's content.

        Raises :class:`InvalidInputError` naming the file when it can no longer be read
        (moved, deleted or locked since it was checked), so a batch records it as that
        file's failure instead of stopping.
        """
        if self.path is not None:
            try:
                return self.path.open("rb")
            except OSError as error:
                raise InvalidInputError(
                    f"{self.display_name} can no longer be read: {error.strerror or error}",
                    filename=self.display_name,
                ) from error
        assert self.data is not None
        return io.BytesIO(self.data)

    def sha256(self) -> str:
        """The SHA-256 of the content (read once, with the page count, then remembered)."""
        return self._scan[0]

    @property
    def page_hint(self) -> int:
        """A cheap guess of the page count: PDF page objects counted, 1 for anything else.

        Page objects inside compressed object streams are not seen; then the guess is 1.
        """
        return self._scan[1].hint if self.kind is PDF else 1

    @property
    def page_count(self) -> int | None:
        """The pages of a PDF, when they can be counted without a PDF parser; else None.

        Never lower than the true count (a page rewritten by an incremental update may count
        twice). None for other file types, and for PDFs with compressed object streams,
        whose page objects cannot be seen (see :mod:`._pdf`).
        """
        return self._scan[1].pages if self.kind is PDF else None

    def scan(self) -> None:
        """Read the content now (hash and page count), so later calls do not read it.

        The async client calls this in a worker thread, so that hashing a large file does
        not hold up its event loop.
        """
        _ = self._scan

    @cached_property
    def _scan(self) -> tuple[str, PageCounter]:
        digest = hashlib.sha256()
        counter = PageCounter()
        count_pages = self.kind is PDF
        with self.open() as stream:
            try:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    if count_pages:
                        counter.feed(chunk)
            except OSError as error:
                raise InvalidInputError(
                    f"{self.display_name} could not be read to the end: {error.strerror or error}",
                    filename=self.display_name,
                ) from error
        return digest.hexdigest(), counter


def prepare_upload(
    file: FileInput, filename: str | None = None, *, shown_as: str | None = None
) -> Upload:
    """Validate ``file`` and describe it as an :class:`Upload`.

    Raises :class:`InvalidInputError`, naming the file, when it is missing, a directory,
    unreadable, empty, larger than 200 MB, or not of a type the service takes.
    ``shown_as`` names a path in messages instead of the path itself (a local copy of a
    remote file is named after the original).
    """
    if isinstance(file, Upload):
        return file
    if isinstance(file, (str, os.PathLike)):
        return _from_path(Path(file), filename, shown_as)
    if isinstance(file, (bytes, bytearray, memoryview)):
        if not filename:
            raise InvalidInputError(
                "bytes were given without a file name: pass filename='report.pdf' so results "
                "and errors can name the document"
            )
        return _from_bytes(bytes(file), filename)
    if hasattr(file, "read"):
        return _from_stream(file, filename)
    raise InvalidInputError(
        f"cannot read a file from {type(file).__name__}: pass a path, bytes with filename=, "
        f"or a binary file object"
    )


def _from_path(path: Path, filename: str | None, shown_as: str | None = None) -> Upload:
    shown = _printable(shown_as if shown_as is not None else str(path))
    if not path.exists():
        if path.is_symlink():
            target = _printable(str(os.readlink(path)))
            raise InvalidInputError(
                f"{shown} is a broken symbolic link (it points to {target!r}, which does not "
                f"exist)",
                filename=shown,
            )
        raise InvalidInputError(f"{shown} does not exist; check the path", filename=shown)
    if path.is_dir():
        raise InvalidInputError(
            f"{shown} is a directory, not a file; pass the files in it, or use a loader that "
            f"takes a directory",
            filename=shown,
        )
    try:
        # Before opening: opening a named pipe would block until something writes to it.
        if not stat.S_ISREG(path.stat().st_mode):
            raise InvalidInputError(
                f"{shown} is not a regular file (a device, socket or pipe); copy it to a "
                f"file first",
                filename=shown,
            )
        with path.open("rb") as stream:
            head = stream.read(_HEAD_BYTES)
            size = os.fstat(stream.fileno()).st_size
    except PermissionError as error:
        raise InvalidInputError(
            f"{shown} cannot be read (permission denied); check its permissions",
            filename=shown,
        ) from error
    except OSError as error:
        raise InvalidInputError(
            f"{shown} cannot be read: {error.strerror or error}", filename=shown
        ) from error
    name = filename or path.name
    kind = _check_content(shown, name, size, head, lambda: path.open("rb"))
    return Upload(shown, _wire_name(name, kind), kind, size, path=path)


def _from_bytes(data: bytes, filename: str) -> Upload:
    shown = _printable(filename)
    kind = _check_content(shown, filename, len(data), data[:_HEAD_BYTES], lambda: io.BytesIO(data))
    return Upload(shown, _wire_name(filename, kind), kind, len(data), data=data)


def _from_stream(stream: IO[bytes], filename: str | None) -> Upload:
    name = getattr(stream, "name", None)
    shown_name = filename or (name if isinstance(name, str) else None)
    if not shown_name:
        raise InvalidInputError(
            "a file object without a name was given: pass filename='report.pdf' so results "
            "and errors can name the document"
        )
    # A file opened from disk at its start is streamed from its path, so retries re-read it
    # and a large file never sits in memory. Anything else (BytesIO, a pipe, a socket) cannot
    # be re-read reliably, so its content is kept, within the size limit.
    if isinstance(name, str) and os.path.isfile(name) and _at_start(stream):
        return _from_path(Path(name), filename)
    data = stream.read(MAX_FILE_BYTES + 1)
    if not isinstance(data, bytes):
        raise InvalidInputError(
            f"{_printable(shown_name)} was opened in text mode; open it with 'rb'",
            filename=_printable(shown_name),
        )
    return _from_bytes(data, shown_name)


def _at_start(stream: IO[bytes]) -> bool:
    try:
        return stream.seekable() and stream.tell() == 0
    except (OSError, ValueError):
        return False


def _check_content(
    shown: str, name: str, size: int, head: bytes, open_whole: Callable[[], BinaryIO]
) -> FileKind:
    if size == 0:
        raise InvalidInputError(f"{shown} is empty (0 bytes); nothing to OCR", filename=shown)
    if size > MAX_FILE_BYTES:
        raise InvalidInputError(
            f"{shown} is {size / 1024 / 1024:.1f} MB; the service accepts files up to 200 MB: "
            f"split the document, or OCR part of it with page_range",
            filename=shown,
        )
    kind = sniff_kind(head, name, open_whole)
    if kind is None:
        raise InvalidInputError(
            f"{shown} is not a file type the service accepts (by its content); supported: "
            f"{_SUPPORTED_TEXT}",
            filename=shown,
        )
    if kind is PDF:
        _check_pdf_end(shown, size, open_whole)
    return kind


def _check_pdf_end(shown: str, size: int, open_whole: Callable[[], BinaryIO]) -> None:
    """Refuse a PDF that looks cut short (a broken download) before it is uploaded."""
    try:
        with open_whole() as stream:
            stream.seek(max(0, size - TAIL_BYTES))
            tail = stream.read(TAIL_BYTES)
    except OSError as error:
        raise InvalidInputError(
            f"{shown} cannot be read: {error.strerror or error}", filename=shown
        ) from error
    problem = truncation_problem(tail)
    if problem is not None:
        raise InvalidInputError(f"{shown} is not a whole PDF: it {problem}", filename=shown)


def _printable(name: str) -> str:
    """A file name safe to print and to encode: undecodable bytes become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


_MAX_WIRE_NAME = 200


def _wire_name(name: str, kind: FileKind) -> str:
    """The file name to send: printable, not too long, with an extension true to the content.

    The service may pick its converter by extension, so a PDF called ``scan.png`` is sent as
    ``scan.pdf``.
    """
    pure = PurePath(_printable(name).replace("\\", "/"))
    stem, suffix = pure.stem or "document", pure.suffix.lower()
    if suffix not in kind.extensions:
        suffix = kind.extension
    room = _MAX_WIRE_NAME - len(suffix)
    return stem[:room] + suffix
