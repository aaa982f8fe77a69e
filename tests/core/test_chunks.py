"""The splitting core: chunks of whole lines by size, each with the boxes of its lines."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datalab_ocr import PAGE_SEPARATOR, OCRResult, PageSpan, decode_bboxes
from datalab_ocr._chunks import ChunkSettings, line_map_of, split
from datalab_ocr._documents import LoadOptions, PageRecord, SourceFile, build_records
from datalab_ocr._geometry import LINE_MAP_KEY, normalize_box

SHA = "cd" * 32
SOURCE = SourceFile.from_path("/data/report.pdf")
WORDS = ["north", "south", "east", "west", "tide", "marsh", "heron", "reed", "salt", "mud"]


def column_page(index: int, count: int, size: tuple[float, float] = (800, 1000)) -> dict[str, Any]:
    """A page of one column: ``count`` distinct lines stacked from the top, each boxed."""
    lines = []
    for number in range(count):
        text = f"p{index} l{number} " + " ".join(WORDS[: 1 + (number * 7) % len(WORDS)])
        top = 30 + 24 * number
        lines.append(
            {"text": text, "confidence": 0.9, "bbox": [40, top, 40 + 7 * len(text), top + 18]}
        )
    return {
        "page": index + 1,
        "page_index": index,
        "image_bbox": [0, 0, *size],
        "text_lines": lines,
    }


def ocr_result(*pages: dict[str, Any]) -> OCRResult:
    return OCRResult.model_validate(
        {"status": "complete", "success": True, "request_id": "req-1", "pages": list(pages)}
    )


def records(result: OCRResult, mode: str = "page") -> list[PageRecord]:
    return build_records(result, SOURCE, SHA, LoadOptions(mode=mode))  # type: ignore[arg-type]


def chunks_of(record: PageRecord, settings: ChunkSettings) -> list[Any]:
    return split(record.text, line_map_of(record.text, record.metadata, set()), settings)


def lines_inside(result: OCRResult, span: PageSpan) -> list[str]:
    """The lines of ``span``'s page whose boxes lie inside it, top to bottom."""
    page = next(page for page in result.pages if page.page_index == span.page_index)
    inside = []
    for line in page.text_lines:
        box = normalize_box(line.bbox, page.image_bbox)
        if box is not None and span.contains(PageSpan(span.page_index, *box)):
            inside.append(line.text)
    return inside


def test_chunk_boxes_hold_exactly_the_lines_of_the_chunk_text() -> None:
    result = ocr_result(column_page(0, 30))
    chunks = chunks_of(records(result)[0], ChunkSettings(chunk_size=300, chunk_overlap=60))

    assert len(chunks) > 3
    for chunk in chunks:
        (span,) = decode_bboxes(str(chunk.metadata()["bboxes"]))
        assert "\n".join(lines_inside(result, span)) == chunk.text


def test_a_chunk_across_a_page_break_has_one_entry_per_page() -> None:
    result = ocr_result(column_page(0, 8), column_page(1, 8))
    (record,) = records(result, mode="file")
    chunks = chunks_of(record, ChunkSettings(chunk_size=400, chunk_overlap=0))

    across = [chunk for chunk in chunks if PAGE_SEPARATOR in chunk.text]
    assert across, "some chunk must span the page break"
    for chunk in across:
        first, second = chunk.text.split(PAGE_SEPARATOR)
        spans = decode_bboxes(str(chunk.metadata()["bboxes"]))
        assert [span.page_index for span in spans] == [0, 1]
        assert "\n".join(lines_inside(result, spans[0])) == first
        assert "\n".join(lines_inside(result, spans[1])) == second


def test_boxes_are_fractions_of_a_landscape_page() -> None:
    result = ocr_result(column_page(0, 3, size=(1100, 850)))
    (chunk,) = chunks_of(records(result)[0], ChunkSettings())

    (span,) = decode_bboxes(str(chunk.metadata()["bboxes"]))
    lines = result.pages[0].text_lines
    right = max((line.bbox or [0, 0, 0, 0])[2] for line in lines)
    exact = (40 / 1100, 30 / 850, right / 1100, (30 + 24 * 2 + 18) / 850)
    assert (span.x0, span.y0, span.x1, span.y1) == pytest.approx(exact, abs=1e-4)
    assert span.x0 <= exact[0] and span.y0 <= exact[1]  # rounded outwards
    assert span.x1 >= exact[2] and span.y1 >= exact[3]


def test_chunks_stay_within_the_size_and_share_whole_lines_within_the_overlap() -> None:
    (record,) = records(ocr_result(column_page(0, 40)))
    chunks = chunks_of(record, ChunkSettings(chunk_size=250, chunk_overlap=80))

    assert all(len(chunk.text) <= 250 for chunk in chunks)
    for before, after in itertools.pairwise(chunks):
        shared = before.end - after.start
        assert 0 <= shared <= 80
        assert after.start == 0 or record.text[after.start - 1] == "\n"
        assert after.end > before.end


def test_every_chunk_is_the_slice_of_the_text_it_says_and_none_is_lost() -> None:
    (record,) = records(ocr_result(column_page(0, 10), column_page(1, 10)), mode="file")
    chunks = chunks_of(record, ChunkSettings(chunk_size=200, chunk_overlap=50))

    assert all(record.text[chunk.start : chunk.end] == chunk.text for chunk in chunks)
    covered: set[int] = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    lost = "".join(record.text[i] for i in range(len(record.text)) if i not in covered)
    assert lost.strip() == ""


def test_a_line_longer_than_a_chunk_is_cut_at_spaces_and_each_piece_keeps_its_box() -> None:
    long_line = " ".join(f"{word}{n}" for n in range(12) for word in WORDS)
    page = {
        "page": 1,
        "page_index": 0,
        "image_bbox": [0, 0, 1000, 1000],
        "text_lines": [
            {"text": "title", "bbox": [100, 50, 200, 70]},
            {"text": long_line, "bbox": [100, 100, 900, 120]},
        ],
    }
    (record,) = records(ocr_result(page))
    chunks = chunks_of(record, ChunkSettings(chunk_size=100, chunk_overlap=0))

    pieces = [chunk for chunk in chunks if chunk.text != "title"]
    assert "".join(chunk.text for chunk in pieces) == long_line
    assert all(len(chunk.text) <= 100 for chunk in chunks)
    assert all(not piece.text.startswith(" ") for piece in pieces)
    for piece in pieces:
        assert decode_bboxes(str(piece.metadata()["bboxes"])) == [PageSpan(0, 0.1, 0.1, 0.9, 0.12)]


def test_sizes_can_be_counted_in_tokens() -> None:
    (record,) = records(ocr_result(column_page(0, 30)))

    def tokens(text: str) -> int:
        return len(text.split())

    chunks = chunks_of(record, ChunkSettings(chunk_size=40, chunk_overlap=0, length=tokens))

    assert all(tokens(chunk.text) <= 40 for chunk in chunks)
    assert max(tokens(chunk.text) for chunk in chunks) > 30  # filled by tokens, not characters
    assert max(len(chunk.text) for chunk in chunks) > 40


def test_a_line_without_a_box_makes_the_chunk_say_its_boxes_are_incomplete() -> None:
    page = column_page(0, 4)
    page["text_lines"][2]["bbox"] = None
    (record,) = records(ocr_result(page))
    (chunk,) = chunks_of(record, ChunkSettings())

    metadata = chunk.metadata(line_boxes=True)
    assert metadata["bboxes_complete"] is False
    assert len(decode_bboxes(str(metadata["line_bboxes"]))) == 3


def test_a_page_without_image_size_gets_no_entry_rather_than_a_guess() -> None:
    sized, unsized = column_page(0, 3), column_page(1, 3)
    del unsized["image_bbox"]
    (record,) = records(ocr_result(sized, unsized), mode="file")
    (chunk,) = chunks_of(record, ChunkSettings())

    metadata = chunk.metadata()
    assert [span.page_index for span in decode_bboxes(str(metadata["bboxes"]))] == [0]
    assert metadata["bboxes_complete"] is False


def test_text_without_a_line_map_is_split_by_size_without_boxes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = "\n".join(f"line {n} of a document from another loader" for n in range(40))
    warned: set[str] = set()

    with caplog.at_level(logging.WARNING):
        maps = [line_map_of(text, {"source": "other.txt"}, warned) for _ in range(5)]
    chunks = split(text, None, ChunkSettings(chunk_size=200, chunk_overlap=0))

    assert maps == [None] * 5
    assert len(caplog.records) == 1
    assert "without bboxes" in caplog.records[0].getMessage()
    assert len(chunks) > 5
    assert all(chunk.metadata() == {} for chunk in chunks)


def test_text_edited_after_ocr_is_split_without_boxes(caplog: pytest.LogCaptureFixture) -> None:
    (record,) = records(ocr_result(column_page(0, 5)))
    edited = record.text.replace("p0 l1", "p0 L1")

    with caplog.at_level(logging.WARNING):
        line_map = line_map_of(edited, record.metadata, set())

    assert line_map is None
    assert "changed after OCR" in caplog.text


def test_every_page_record_carries_its_line_map_whatever_the_options() -> None:
    result = ocr_result(column_page(0, 3), column_page(1, 3))

    for options in (LoadOptions(), LoadOptions(mode="file"), LoadOptions(include_geometry=True)):
        for record in build_records(result, SOURCE, SHA, options):
            assert line_map_of(record.text, record.metadata, set()) is not None
            assert isinstance(record.metadata[LINE_MAP_KEY], str)


def test_the_line_map_can_be_left_out() -> None:
    options = LoadOptions(include_line_map=False)
    (record,) = build_records(ocr_result(column_page(0, 3)), SOURCE, SHA, options)

    assert LINE_MAP_KEY not in record.metadata


def test_bad_sizes_are_refused_when_the_settings_are_made() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        ChunkSettings(chunk_size=0)
    with pytest.raises(ValueError, match="chunk_overlap"):
        ChunkSettings(chunk_size=100, chunk_overlap=100)


@given(
    pages=st.lists(
        st.lists(st.text(alphabet="ab \n\f", min_size=0, max_size=40), max_size=12),
        min_size=1,
        max_size=3,
    ),
    size=st.integers(min_value=1, max_value=120),
    overlap_share=st.floats(min_value=0.0, max_value=0.9),
)
@settings(max_examples=150, deadline=None)
def test_any_text_splits_into_bounded_ordered_slices_that_lose_nothing(
    pages: list[list[str]], size: int, overlap_share: float
) -> None:
    result = ocr_result(
        *(
            {
                "page_index": index,
                "image_bbox": [0, 0, 100, 100],
                "text_lines": [{"text": text, "bbox": [1, 1, 9, 9]} for text in lines],
            }
            for index, lines in enumerate(pages)
        )
    )
    (record,) = records(result, mode="file")
    settings_ = ChunkSettings(chunk_size=size, chunk_overlap=int(size * overlap_share))

    line_map = line_map_of(record.text, record.metadata, set())

    for chunks in (split(record.text, line_map, settings_), split(record.text, None, settings_)):
        assert all(len(chunk.text) <= size for chunk in chunks)
        assert all(record.text[chunk.start : chunk.end] == chunk.text for chunk in chunks)
        assert all(a.start < b.start and a.end < b.end for a, b in itertools.pairwise(chunks))
        covered = {i for chunk in chunks for i in range(chunk.start, chunk.end)}
        assert all(record.text[i].isspace() for i in range(len(record.text)) if i not in covered)
