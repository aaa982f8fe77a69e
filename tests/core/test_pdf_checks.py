"""Before upload: a PDF cut short is refused, and a page selection outside the file too.

The whole PDFs are built with the structures real writers leave (``tests/fixtures/pdfs/``,
see its ``SOURCES.md``); the broken ones are cut or padded from them here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from datalab_ocr import InvalidInputError
from datalab_ocr._inputs import prepare_upload

from .conftest import Harness, complete, form_fields, page, submitted

PDFS = Path(__file__).resolve().parents[1] / "fixtures" / "pdfs"
REAL = sorted(PDFS.glob("*.pdf"))
FOUR_PAGES = PDFS / "harbour-report-updated.pdf"  # four pages, three incremental updates
OBJECT_STREAMS = PDFS / "harbour-report-objstm.pdf"  # page objects hidden in object streams


def copy(tmp_path: Path, data: bytes, name: str = "copy.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# A PDF cut short.


@pytest.mark.parametrize("path", REAL, ids=lambda path: path.name)
def test_every_real_pdf_is_accepted(path: Path) -> None:
    assert prepare_upload(path).kind.name == "PDF"


@pytest.mark.parametrize("path", REAL, ids=lambda path: path.name)
@pytest.mark.parametrize("kept", [0.1, 0.5, 0.9, 0.999])
def test_a_pdf_cut_short_is_refused_naming_the_file(
    tmp_path: Path, path: Path, kept: float
) -> None:
    data = path.read_bytes()
    cut = copy(tmp_path, data[: int(len(data) * kept)], "download.pdf")

    with pytest.raises(InvalidInputError, match="not a whole PDF") as caught:
        prepare_upload(cut)

    assert caught.value.filename == str(cut)
    assert "download.pdf" in str(caught.value)


def test_a_pdf_cut_inside_its_last_update_is_refused(tmp_path: Path) -> None:
    data = FOUR_PAGES.read_bytes()
    last_revision = data.rindex(b"%%EOF", 0, len(data) - 10)
    # Everything up to the update before the last one, and part of the last update.
    cut = copy(tmp_path, data[: (last_revision + len(data)) // 2])

    with pytest.raises(InvalidInputError, match="inside an update"):
        prepare_upload(cut)


def test_the_bytes_of_a_pdf_cut_short_are_refused_too() -> None:
    data = FOUR_PAGES.read_bytes()

    with pytest.raises(InvalidInputError, match=r"scan\.pdf is not a whole PDF"):
        prepare_upload(data[: len(data) // 2], filename="scan.pdf")


@pytest.mark.parametrize(
    "trailer", [b"\n", b"\x00" * 20_000, b"\r\n% appended by a mail gateway\r\n"]
)
def test_padding_or_junk_after_the_end_marker_is_accepted(tmp_path: Path, trailer: bytes) -> None:
    padded = copy(tmp_path, FOUR_PAGES.read_bytes() + trailer)

    assert prepare_upload(padded).size == FOUR_PAGES.stat().st_size + len(trailer)


# Pages counted before upload.


def test_the_pages_of_a_pdf_are_counted_before_upload() -> None:
    assert prepare_upload(FOUR_PAGES).page_count == 4


def test_pages_hidden_in_object_streams_are_unknown_not_guessed() -> None:
    assert prepare_upload(OBJECT_STREAMS).page_count is None


def test_a_selection_with_no_page_of_the_file_is_refused_before_upload(
    harness: Harness,
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        harness.call("ocr", FOUR_PAGES, page_range="7")

    message = str(caught.value)
    assert "page_range '7' selects no page" in message
    assert "harbour-report-updated.pdf, which has 4 pages (0-based: 0-3)" in message
    assert harness.service.requests == []


def test_pages_past_the_end_are_warned_about_and_the_rest_is_ocred(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.service.submits = [submitted("r1")]
    harness.service.polls = [complete(page(1, "one"), page(3, "three"))]

    with caplog.at_level(logging.WARNING, logger="datalab_ocr"):
        result = harness.call("ocr", FOUR_PAGES, page_range="0,2-5", filename="four.pdf")

    assert [p.page_index for p in result.pages] == [0, 2]
    assert form_fields(harness.service.posts[0])["page_range"] == "0,2-5"
    [warning] = [r.getMessage() for r in caplog.records if "past the end" in r.getMessage()]
    assert "pages 4-5 past the end" in warning
    assert "only 0,2-3 will be OCRed" in warning


def test_an_uncountable_pdf_is_sent_with_its_selection_for_the_service_to_judge(
    harness: Harness,
) -> None:
    harness.service.submits = [submitted("r1")]
    harness.service.polls = [complete(page(8, "eight"))]

    harness.call("ocr", OBJECT_STREAMS, page_range="7")

    assert form_fields(harness.service.posts[0])["page_range"] == "7"


def test_a_batch_refuses_the_file_and_goes_on_with_the_others(harness: Harness) -> None:
    harness.service.submits = [submitted("r1")]
    harness.service.polls = [complete(page(1, "one"))]

    batch = harness.call(
        "ocr_batch", [FOUR_PAGES, PDFS / "annotated-memo.pdf"], page_range="3", errors="collect"
    )

    [failure] = batch.failures
    assert failure.source == str(PDFS / "annotated-memo.pdf")
    assert "selects no page" in str(failure.error)
    assert len(harness.service.posts) == 1
