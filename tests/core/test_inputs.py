"""Inputs: what is accepted, how its type is decided, and bad input refused before upload."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from datalab_ocr import MAX_FILE_BYTES, InvalidInputError
from datalab_ocr._inputs import Upload, prepare_upload

from .conftest import PDF_BYTES

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 64
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\0" * 64
GIF = b"GIF89a" + b"\0" * 64
TIFF_LE = b"II*\x00" + b"\0" * 64
TIFF_BE = b"MM\x00*" + b"\0" * 64
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64


def ooxml(folder: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(f"{folder}/document.xml", "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "name", "mime"),
    [
        (PDF_BYTES, "a.pdf", "application/pdf"),
        (PNG, "a.png", "image/png"),
        (JPEG, "a.jpg", "image/jpeg"),
        (WEBP, "a.webp", "image/webp"),
        (GIF, "a.gif", "image/gif"),
        (TIFF_LE, "a.tif", "image/tiff"),
        (TIFF_BE, "a.tiff", "image/tiff"),
        (OLE2, "a.doc", "application/msword"),
        (OLE2, "a.ppt", "application/vnd.ms-powerpoint"),
        (
            ooxml("word"),
            "a.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (
            ooxml("ppt"),
            "a.pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
    ],
)
def test_each_supported_type_is_recognised_by_content(
    tmp_path: Path, content: bytes, name: str, mime: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    assert prepare_upload(path).kind.mime_type == mime


def test_old_office_files_without_a_telling_name_are_told_apart_by_their_streams() -> None:
    word = OLE2 + "WordDocument".encode("utf-16-le")
    slides = OLE2 + "PowerPoint Document".encode("utf-16-le")

    assert prepare_upload(word, filename="blob").kind.extension == ".doc"
    assert prepare_upload(slides, filename="blob").kind.extension == ".ppt"


def test_a_pdf_with_a_png_name_is_accepted_and_sent_as_pdf(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    path.write_bytes(PDF_BYTES)

    upload = prepare_upload(path)

    assert (upload.kind.mime_type, upload.filename) == ("application/pdf", "scan.pdf")
    assert upload.display_name == str(path)


def test_the_content_decides_not_the_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_text("just some text, not a PDF")

    with pytest.raises(InvalidInputError, match="not a file type the service accepts") as e:
        prepare_upload(path)

    assert e.value.filename == str(path)


def test_a_zip_that_is_not_word_or_powerpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    path.write_bytes(ooxml("xl"))

    with pytest.raises(InvalidInputError, match="supported: PDF"):
        prepare_upload(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.pdf"

    with pytest.raises(InvalidInputError, match=r"nope\.pdf does not exist") as caught:
        prepare_upload(path)

    assert caught.value.filename == str(path)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is a directory"):
        prepare_upload(tmp_path)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdf"
    path.touch()

    with pytest.raises(InvalidInputError, match=r"empty \(0 bytes\)"):
        prepare_upload(path)


def test_a_file_over_200_mb_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.pdf"
    with path.open("wb") as handle:
        handle.write(PDF_BYTES)
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk space, no time

    with pytest.raises(InvalidInputError, match="up to 200 MB"):
        prepare_upload(path)


def test_a_file_of_exactly_200_mb_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "big.pdf"
    with path.open("wb") as handle:
        handle.write(PDF_BYTES)
        handle.seek(MAX_FILE_BYTES - len(b"%%EOF\n"))  # a sparse file, ending as a PDF ends
        handle.write(b"%%EOF\n")

    assert prepare_upload(path).size == MAX_FILE_BYTES


def test_an_unreadable_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.pdf"
    path.write_bytes(PDF_BYTES)
    # Tests may run as root, who can read anything: make opening fail as it would for a user.
    real_open = Path.open

    def deny(self: Path, *args: object, **kwargs: object) -> object:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", deny)

    with pytest.raises(InvalidInputError, match="permission denied") as caught:
        prepare_upload(path)

    assert caught.value.filename == str(path)


def test_a_broken_symlink_says_where_it_points(tmp_path: Path) -> None:
    link = tmp_path / "link.pdf"
    link.symlink_to(tmp_path / "moved-away.pdf")

    with pytest.raises(InvalidInputError, match="broken symbolic link.*moved-away"):
        prepare_upload(link)


def test_bytes_without_a_file_name_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="filename="):
        prepare_upload(PDF_BYTES)


def test_a_nameless_file_object_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="filename="):
        prepare_upload(io.BytesIO(PDF_BYTES))


def test_a_file_object_with_a_name_is_accepted() -> None:
    upload = prepare_upload(io.BytesIO(PDF_BYTES), filename="memo.pdf")

    with upload.open() as stream:
        assert stream.read() == PDF_BYTES


def test_an_open_file_is_streamed_from_its_path(tmp_path: Path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(PDF_BYTES)

    with path.open("rb") as handle:
        upload = prepare_upload(handle)

    assert upload.path == path
    assert upload.data is None


def test_a_text_stream_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="'rb'"):
        prepare_upload(io.StringIO("%PDF-1.4"), filename="doc.pdf")  # type: ignore[arg-type]


def test_each_open_gives_the_whole_file_again(tmp_path: Path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(PDF_BYTES)
    upload = prepare_upload(path)

    reads = []
    for _ in range(2):
        with upload.open() as stream:
            reads.append(stream.read())

    assert reads == [PDF_BYTES, PDF_BYTES]


def test_a_non_utf8_file_name_is_named_printably_and_sent_safely(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/r\xe9sum\xe9.pdf"
    with open(raw, "wb") as handle:
        handle.write(PDF_BYTES)
    path = Path(os.fsdecode(raw))

    upload = prepare_upload(path)

    assert upload.filename == "r\ufffdsum\ufffd.pdf"
    upload.filename.encode("utf-8")  # must not raise
    assert "\ufffd" in upload.display_name


def test_a_very_long_file_name_is_shortened_for_sending(tmp_path: Path) -> None:
    name = "x" * 250 + ".pdf"
    path = tmp_path / name
    path.write_bytes(PDF_BYTES)

    upload = prepare_upload(path)

    assert len(upload.filename) == 200
    assert upload.filename.endswith(".pdf")


def test_an_unknown_object_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="cannot read a file from int"):
        prepare_upload(42)  # type: ignore[arg-type]


def test_sha256_identifies_the_content(tmp_path: Path) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(PDF_BYTES)

    assert prepare_upload(path).sha256() == prepare_upload(PDF_BYTES, filename="b.pdf").sha256()


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    pipe = tmp_path / "incoming.pdf"
    os.mkfifo(pipe)

    with pytest.raises(InvalidInputError, match="not a regular file"):
        prepare_upload(pipe)


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (PNG + b"tEXtComment\x00see %PDF-1.7 spec", "scan.png"),
        (JPEG + b"\xff\xfe comment %PDF-1.4", "photo.jpg"),
    ],
)
def test_an_image_mentioning_a_pdf_header_stays_an_image(
    tmp_path: Path, content: bytes, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    assert prepare_upload(path).kind.mime_type.startswith("image/")


def test_a_text_file_mentioning_a_pdf_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("These notes explain the %PDF-1.4 header.\n")

    with pytest.raises(InvalidInputError, match="not a file type"):
        prepare_upload(path)


def test_a_pdf_header_after_binary_junk_is_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "wrapped.bin"
    path.write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 120 + PDF_BYTES)

    assert prepare_upload(path).kind.mime_type == "application/pdf"


def test_a_file_removed_after_its_check_fails_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "gone.pdf"
    path.write_bytes(PDF_BYTES)
    upload = prepare_upload(path)
    path.unlink()

    with pytest.raises(InvalidInputError, match="can no longer be read") as caught:
        upload.open()
    assert caught.value.filename == str(path)
    with pytest.raises(InvalidInputError, match="gone.pdf"):
        upload.sha256()


def test_the_hash_and_page_count_come_from_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "three.pdf"
    path.write_bytes(b"%PDF-1.4\n" + b"<< /Type /Page >>\n" * 3 + b"<< /Type /Pages >>\n%%EOF\n")
    upload = prepare_upload(path)
    opened = 0
    real_open = Upload.open

    def counting_open(self: Upload) -> Any:
        nonlocal opened
        opened += 1
        return real_open(self)

    monkeypatch.setattr(Upload, "open", counting_open)

    assert (upload.page_hint, len(upload.sha256())) == (3, 64)
    assert opened == 1
