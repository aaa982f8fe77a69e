"""Chunk geometry: pixel boxes to page fractions, the bboxes format, the line map."""

from __future__ import annotations

import json

import pytest

from datalab_ocr import OCRPage
from datalab_ocr._geometry import (
    GeometryError,
    PageSpan,
    build_line_map,
    decode_bboxes,
    decode_line_map,
    encode_bboxes,
    line_spans,
    normalize_box,
    union_by_page,
)


def page(lines: list[tuple[str, list[float] | None]], size: list[float] | None) -> OCRPage:
    return OCRPage.model_validate(
        {
            "page": 1,
            "page_index": 0,
            "image_bbox": size,
            "text_lines": [{"text": text, "bbox": box} for text, box in lines],
        }
    )


def test_bboxes_survive_encoding_and_decoding() -> None:
    spans = [PageSpan(0, 0.1, 0.2, 0.5, 0.25), PageSpan(3, 0.0, 0.0, 1.0, 1.0)]

    assert decode_bboxes(encode_bboxes(spans)) == spans


def test_bboxes_decode_from_already_parsed_json() -> None:
    value = [{"page_index": 2, "x0": 0, "y0": 0.5, "x1": 1, "y1": 0.75}]

    assert decode_bboxes(value) == [PageSpan(2, 0.0, 0.5, 1.0, 0.75)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "not JSON"),
        ('{"page_index": 0}', "must be a JSON list"),
        ("[1]", "entry 0 must be an object"),
        ('[{"page_index": 0, "x0": 0, "y0": 0, "x1": 1}]', "missing ['y1']"),
        ('[{"page_index": 0, "x0": 0, "y0": 0, "x1": 1, "y1": 1, "z": 1}]', "unknown ['z']"),
        ('[{"page_index": -1, "x0": 0, "y0": 0, "x1": 1, "y1": 1}]', "page_index must be"),
        ('[{"page_index": 0, "x0": "0", "y0": 0, "x1": 1, "y1": 1}]', "x0 must be a number"),
        ('[{"page_index": 0, "x0": 0, "y0": 0, "x1": 612, "y1": 1}]', "x1 = 612 is outside"),
        ('[{"page_index": 0, "x0": 0.5, "y0": 0, "x1": 0.4, "y1": 1}]', "empty box"),
    ],
)
def test_bad_bboxes_are_refused_saying_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(GeometryError, match="bboxes") as caught:
        decode_bboxes(value)

    assert message in str(caught.value)


def test_pixel_boxes_become_fractions_of_a_landscape_page() -> None:
    assert normalize_box([110, 85, 550, 170], [0, 0, 1100, 850]) == (0.1, 0.1, 0.5, 0.2)


def test_fractions_are_rounded_outwards_so_the_box_holds_its_line() -> None:
    x0, y0, x1, y1 = normalize_box([1, 1, 2, 2], [0, 0, 3, 3]) or (0, 0, 0, 0)

    assert (x0, y0, x1, y1) == (0.3333, 0.3333, 0.6667, 0.6667)


def test_an_image_bbox_not_at_the_origin_is_subtracted() -> None:
    assert normalize_box([150, 250, 200, 300], [100, 200, 300, 400]) == (0.25, 0.25, 0.5, 0.5)


def test_parts_of_a_box_past_the_page_edge_are_clipped() -> None:
    assert normalize_box([-5, 90, 50, 110], [0, 0, 100, 100]) == (0.0, 0.9, 0.5, 1.0)


@pytest.mark.parametrize(
    ("bbox", "image_bbox"),
    [
        (None, [0, 0, 100, 100]),
        ([1, 2, 3, 4], None),
        ([1, 2, 3], [0, 0, 100, 100]),
        ([1, 2, 3, 4], [0, 0, 0, 100]),
        ([5, 2, 3, 4], [0, 0, 100, 100]),
        ([1, 2, float("nan"), 4], [0, 0, 100, 100]),
        ([200, 200, 300, 300], [0, 0, 100, 100]),
    ],
)
def test_a_box_that_cannot_be_placed_is_none_not_a_guess(
    bbox: list[float] | None, image_bbox: list[float] | None
) -> None:
    assert normalize_box(bbox, image_bbox) is None


def test_line_spans_leave_boxless_lines_as_none() -> None:
    spans = line_spans(page([("a", [0, 0, 50, 10]), ("b", None)], [0, 0, 100, 100]), 4)

    assert spans == [PageSpan(4, 0.0, 0.0, 0.5, 0.1), None]


def test_union_by_page_keeps_one_box_per_page_in_order() -> None:
    spans = [
        PageSpan(1, 0.2, 0.1, 0.4, 0.2),
        PageSpan(0, 0.1, 0.8, 0.9, 0.9),
        PageSpan(1, 0.1, 0.3, 0.3, 0.4),
    ]

    assert union_by_page(spans) == [
        PageSpan(1, 0.1, 0.1, 0.4, 0.4),
        PageSpan(0, 0.1, 0.8, 0.9, 0.9),
    ]


def test_line_map_offsets_point_at_each_line_in_the_joined_text() -> None:
    first = page([("alpha", [0, 0, 50, 10]), ("be", [0, 20, 20, 30])], [0, 0, 100, 100])
    second = page([("gamma", None)], [0, 0, 100, 100])
    text = first.text + "\n\f" + second.text

    line_map = decode_line_map(build_line_map([(0, first), (1, second)], "\n\f"))

    assert [text[line.start : line.end] for line in line_map.lines] == ["alpha", "be", "gamma"]
    assert [line.page_index for line in line_map.lines] == [0, 0, 1]
    assert line_map.lines[2].span is None
    assert line_map.matches(text)
    assert not line_map.matches(text.replace("alpha", "alpho"))


def test_a_damaged_line_map_is_refused() -> None:
    with pytest.raises(GeometryError):
        decode_line_map(json.dumps({"v": 1, "crc": 0, "pages": [[0, 0, [[3, 1, 2]]]]}))
    with pytest.raises(GeometryError, match="version"):
        decode_line_map(json.dumps({"v": 99, "crc": 0, "pages": []}))
