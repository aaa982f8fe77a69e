"""Text-layer classes seen on real PDFs, each on a small document built for it.

The documents and the script that writes them are in ``tests/server/documents/``; each one
reproduces a class of problem found on public PDFs (see its docstring there).
"""

from __future__ import annotations

import shutil
import unicodedata
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pypdfium2")

from datalab_ocr.server.engine import DocumentError, PagesResult, prepare_document, process_pages

DOCUMENTS = Path(__file__).parent / "documents"


def _run(name: str, tmp_path: Path) -> PagesResult:
    path = tmp_path / name
    shutil.copy(DOCUMENTS / name, path)
    document = prepare_document(
        str(path), "pdf", suffix=".pdf", max_image_pixels=50_000_000, office_timeout=30
    )
    return process_pages(
        document,
        list(range(document.page_count)),
        engine="tesseract",
        render_scale=2.0,
        max_image_pixels=50_000_000,
    )


def _lines(result: PagesResult) -> list[dict[str, Any]]:
    return [line for page in result.pages for line in page["text_lines"]]


def _texts(result: PagesResult) -> list[str]:
    return [str(line["text"]) for line in _lines(result)]


def test_characters_beyond_the_bmp_are_kept(tmp_path: Path) -> None:
    assert _texts(_run("astral.pdf", tmp_path)) == ["Math \U0001d400 and smile \U0001f600 here"]


def test_text_holds_no_control_characters(tmp_path: Path) -> None:
    text = "\n".join(_texts(_run("controls.pdf", tmp_path)))
    assert not [c for c in text if unicodedata.category(c) == "Cc" and c not in "\n\t"]
    assert "\ufffe" not in text


def test_line_end_hyphen_is_a_hyphen(tmp_path: Path) -> None:
    assert _texts(_run("controls.pdf", tmp_path))[0].endswith("infor-")


def test_rotated_page_keeps_its_text_layer(tmp_path: Path) -> None:
    result = _run("rotated.pdf", tmp_path)
    assert sorted(_texts(result)) == [
        "Its text layer is good and must be kept.",
        "This page is displayed in landscape.",
    ]
    assert all(line["confidence"] == 1.0 for line in _lines(result))


def test_rotated_page_is_boxed_as_displayed(tmp_path: Path) -> None:
    page = _run("rotated.pdf", tmp_path).pages[0]
    width, height = page["image_bbox"][2], page["image_bbox"][3]
    assert (width, height) == (792 * 2, 612 * 2)
    for line in page["text_lines"]:
        x0, y0, x1, y1 = line["bbox"]
        assert 0 <= x0 < x1 <= width
        assert 0 <= y0 < y1 <= height
        assert y1 - y0 > x1 - x0  # turned by 90 degrees on the displayed page


def test_garbage_text_layer_falls_back_to_ocr(tmp_path: Path) -> None:
    result = _run("garbage.pdf", tmp_path)
    assert "Garbage layer here" in " ".join(_texts(result))
    assert "tesseract" in result.versions


def test_doubtful_text_layer_is_kept_with_confidence_below_one(tmp_path: Path) -> None:
    [line] = _lines(_run("doubtful.pdf", tmp_path))
    assert line["text"] == "Mostly good text with one odd mark here"
    assert 0.9 < line["confidence"] < 1.0
    assert line["original_text_good"] is False


def test_vertical_cjk_is_one_line(tmp_path: Path) -> None:
    assert "縦書きの文章" in _texts(_run("vertical.pdf", tmp_path))


def test_turned_label_is_one_line(tmp_path: Path) -> None:
    assert "Rotated label" in _texts(_run("vertical.pdf", tmp_path))


def test_right_to_left_text_is_in_logical_order(tmp_path: Path) -> None:
    assert _texts(_run("rtl.pdf", tmp_path)) == ["سلام 2024 عليكم", "سلام 2024 عليكم", "مرحبا"]


def test_right_to_left_text_on_a_rotated_page_is_in_logical_order(tmp_path: Path) -> None:
    texts = _texts(_run("rtl-rotated.pdf", tmp_path))
    assert sorted(texts) == sorted(["سلام 2024 عليكم", "سلام 2024 عليكم", "مرحبا"])


def test_text_drawn_twice_a_little_offset_is_read_once(tmp_path: Path) -> None:
    # A shadowed label (one show per letter, so PDFium interleaves the copies) and a fake bold.
    texts = _texts(_run("shadow.pdf", tmp_path))
    assert texts[:2] == ["Letter by letter", "Bold balloon seen"]


def test_glyphs_set_close_together_are_no_copies(tmp_path: Path) -> None:
    assert _texts(_run("shadow.pdf", tmp_path))[2] == "Tight.."


def test_utf8_character_codes_pdfium_cannot_map_are_read(tmp_path: Path) -> None:
    assert _texts(_run("utf8-codes.pdf", tmp_path)) == ["Comma \u3001 and \U000289c0 here"]


def test_encrypted_pdf_says_how_to_decrypt(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="encrypted with a password") as caught:
        _run("encrypted.pdf", tmp_path)
    assert "qpdf --decrypt" in str(caught.value)


def test_pdf_pdfium_cannot_open_is_repaired(tmp_path: Path) -> None:
    assert _texts(_run("broken.pdf", tmp_path)) == ["Repaired and read"]


def test_pdf_whose_page_tree_is_lost_is_read_from_its_surviving_pages(tmp_path: Path) -> None:
    result = _run("lost-page-tree.pdf", tmp_path)
    assert _texts(result) == ["First page survives", "Second page survives"]
    assert [page["page"] for page in result.pages] == [1, 2]


def test_damaged_pdf_read_after_an_encrypted_one_is_not_called_encrypted(tmp_path: Path) -> None:
    # PDFium keeps its last error ("incorrect password") for the next file that fails to load.
    with pytest.raises(DocumentError, match="encrypted"):
        _run("encrypted.pdf", tmp_path)
    assert _texts(_run("lost-page-tree.pdf", tmp_path)) == [
        "First page survives",
        "Second page survives",
    ]


def test_text_layer_result_names_no_ocr_engine(tmp_path: Path) -> None:
    versions = _run("astral.pdf", tmp_path).versions
    assert "pdfium" in versions
    assert "tesseract" not in versions
    assert "tesserocr" not in versions


@pytest.mark.parametrize(
    ("rotation", "expected"),
    [
        (0, [0.0, 0.0, 20.0, 10.0]),
        (90, [782.0, 0.0, 792.0, 20.0]),
        (180, [592.0, 782.0, 612.0, 792.0]),
        (270, [0.0, 592.0, 10.0, 612.0]),
    ],
)
def test_page_geometry_follows_the_displayed_orientation(
    rotation: int, expected: list[float]
) -> None:
    from datalab_ocr.server.textlayer import PageGeometry

    geometry = PageGeometry(left=0, top=792, scale=1.0, right=612, bottom=0, rotation=rotation)
    # A 20 x 10 box in the page's top-left corner, wherever the rotation shows that corner.
    assert geometry.to_pixels((0, 782, 20, 792)) == expected


def test_image_result_names_the_ocr_engine_and_no_pdf_library(tmp_path: Path) -> None:
    path = tmp_path / "letter.png"
    shutil.copy(Path(__file__).parent / "data" / "letter-90.png", path)
    document = prepare_document(
        str(path), "image", suffix=".png", max_image_pixels=50_000_000, office_timeout=30
    )
    versions = process_pages(
        document, [0], engine="tesseract", render_scale=2.0, max_image_pixels=50_000_000
    ).versions
    assert "tesseract" in versions
    assert "pillow" in versions
    assert "pdfium" not in versions
    assert "pypdfium2" not in versions


def test_a_page_sized_by_its_page_tree_keeps_its_size_and_boxes(tmp_path: Path) -> None:
    page = _run("inherited-a4.pdf", tmp_path).pages[0]
    assert page["image_bbox"] == [0.0, 0.0, 595 * 2.0, 842 * 2.0]  # A4, not Letter
    top, foot = page["text_lines"]
    assert (top["text"], foot["text"]) == ("Top of the page", "Foot of the page")
    height = 842 * 2.0
    # Baselines at 790 and 40 points from the bottom: near the top and the foot of A4.
    assert 0 <= top["bbox"][1] < 0.05 * height
    assert 0.93 * height < foot["bbox"][3] <= height
    assert abs(foot["bbox"][3] - (842 - 40) * 2.0) < 12  # the descent below the baseline


def test_glyphs_a_font_maps_to_no_text_are_left_out(tmp_path: Path) -> None:
    [line] = _lines(_run("silent-glyphs.pdf", tmp_path))
    assert line["text"] == "Silent marks here"  # not "Silent mar~ks here", doubtful
    assert line["confidence"] == 1.0
    assert line["original_text_good"] is True
