"""The shared page-to-record mapping: text, metadata and ids, with no framework involved."""

from __future__ import annotations

import json
from typing import Any

import pytest

from datalab_ocr import PAGE_SEPARATOR, JobError, OCRResult
from datalab_ocr._documents import (
    GEOMETRY_KEY,
    LoadOptions,
    SourceFile,
    build_records,
    document_id,
    hidden_keys,
)

SHA = "ab" * 32
SOURCE = SourceFile.from_path("/data/report.pdf")


def result(*pages: list[str], **fields: Any) -> OCRResult:
    body: dict[str, Any] = {
        "status": "complete",
        "success": True,
        "request_id": "req-9",
        "versions": {"surya": "0.17.0", "Texify Model": "2", "models": {"det": "v3"}},
        "pages": [
            {
                "page": index + 1,
                "page_index": index,
                "image_bbox": [0, 0, 612, 792],
                "text_lines": [
                    {"text": text, "confidence": 0.8, "bbox": [1, 2, 3, 4]} for text in lines
                ],
            }
            for index, lines in enumerate(pages)
        ],
    }
    body.update(fields)
    return OCRResult.model_validate(body)


def test_one_record_per_page_with_lines_in_api_order() -> None:
    records = build_records(result(["b first", "a second"], ["c"]), SOURCE, SHA, LoadOptions())

    assert [record.text for record in records] == ["b first\na second", "c"]
    assert [record.page_index for record in records] == [0, 1]


def test_page_metadata_names_the_page_both_ways() -> None:
    records = build_records(result(["x"], ["y"], ["z"]), SOURCE, SHA, LoadOptions())

    assert [(r.metadata["page_index"], r.metadata["page_label"]) for r in records] == [
        (0, "1"),
        (1, "2"),
        (2, "3"),
    ]
    assert {r.metadata["total_pages"] for r in records} == {3}


def test_metadata_is_flat_scalars_only() -> None:
    options = LoadOptions(include_geometry=True)
    (record,) = build_records(result(["x"]), SOURCE, SHA, options)

    assert all(isinstance(value, (str, int, float, bool)) for value in record.metadata.values())


def test_page_metadata_carries_request_confidence_and_size() -> None:
    (record,) = build_records(result(["x", "y"]), SOURCE, SHA, LoadOptions())

    assert record.metadata["request_id"] == "req-9"
    assert record.metadata["mean_confidence"] == pytest.approx(0.8)
    assert (record.metadata["page_width"], record.metadata["page_height"]) == (612, 792)


def test_versions_are_flattened_under_one_prefix() -> None:
    (record,) = build_records(result(["x"]), SOURCE, SHA, LoadOptions())

    versions = {k: v for k, v in record.metadata.items() if k.startswith("datalab_version_")}
    assert versions == {
        "datalab_version_surya": "0.17.0",
        "datalab_version_texify_model": "2",
        "datalab_version_models_det": "v3",
    }


def test_unknown_values_are_left_out_rather_than_none() -> None:
    body = result(["x"])
    body.pages[0].image_bbox = None
    for line in body.pages[0].text_lines:
        line.confidence = None

    (record,) = build_records(body, SOURCE, SHA, LoadOptions())

    assert not {"mean_confidence", "page_width", "page_height"} & record.metadata.keys()
    assert None not in record.metadata.values()


def test_geometry_is_opt_in_and_a_json_string_of_lines() -> None:
    (plain,) = build_records(result(["x"]), SOURCE, SHA, LoadOptions())
    (rich,) = build_records(result(["x"]), SOURCE, SHA, LoadOptions(include_geometry=True))

    assert GEOMETRY_KEY not in plain.metadata
    assert json.loads(str(rich.metadata[GEOMETRY_KEY])) == [
        {"text": "x", "bbox": [1, 2, 3, 4], "confidence": 0.8}
    ]


def test_file_mode_gives_one_record_with_pages_joined_by_the_separator() -> None:
    options = LoadOptions(mode="file", include_geometry=True)
    (record,) = build_records(result(["a"], ["b", "c"]), SOURCE, SHA, options)

    assert record.text == "a" + PAGE_SEPARATOR + "b\nc"
    assert record.page_index is None
    assert "page_label" not in record.metadata
    assert record.metadata["total_pages"] == 2
    lines = json.loads(str(record.metadata[GEOMETRY_KEY]))
    assert [line["page_index"] for line in lines] == [0, 1, 1]


def test_a_result_without_pages_raises_naming_the_file() -> None:
    with pytest.raises(JobError, match="no pages") as caught:
        build_records(result(), SOURCE, SHA, LoadOptions())

    assert caught.value.filename == "/data/report.pdf"
    assert caught.value.request_id == "req-9"


def test_ids_are_deterministic() -> None:
    first = build_records(result(["x"], ["y"]), SOURCE, SHA, LoadOptions())
    again = build_records(result(["x"], ["y"]), SOURCE, SHA, LoadOptions())

    assert [r.id for r in first] == [r.id for r in again]
    assert len({r.id for r in first}) == 2


def test_ids_depend_on_content_page_and_mode() -> None:
    page_mode = LoadOptions()
    ids = {
        document_id(SHA, page_mode, 0),
        document_id(SHA, page_mode, 1),
        document_id("cd" * 32, page_mode, 0),
        document_id(SHA, LoadOptions(mode="file"), None),
    }

    assert len(ids) == 4


def test_page_ids_ignore_the_page_selection_so_wider_reloads_update() -> None:
    assert document_id(SHA, LoadOptions(page_range="1-2"), 1) == document_id(SHA, LoadOptions(), 1)


def test_file_ids_depend_on_the_page_selection() -> None:
    whole = document_id(SHA, LoadOptions(mode="file"), None)
    part = document_id(SHA, LoadOptions(mode="file", page_range=[0, 1]), None)
    same_part = document_id(SHA, LoadOptions(mode="file", page_range="0-1"), None)

    assert whole != part
    assert part == same_part


def test_ids_ignore_options_that_do_not_change_the_text() -> None:
    plain = document_id(SHA, LoadOptions(), 0)

    assert document_id(SHA, LoadOptions(skip_cache=True, include_geometry=True), 0) == plain


def test_bookkeeping_keys_are_hidden_but_citations_are_not() -> None:
    (record,) = build_records(result(["x"]), SOURCE, SHA, LoadOptions(include_geometry=True))
    hidden = set(hidden_keys(record.metadata))

    assert {"request_id", "mean_confidence", GEOMETRY_KEY, "datalab_version_surya"} <= hidden
    assert "page_label" not in hidden


def test_bad_options_fail_when_built() -> None:
    with pytest.raises(ValueError, match="page_range"):
        LoadOptions(page_range="4-2")
    with pytest.raises(ValueError, match="mode"):
        LoadOptions(mode="chapter")  # type: ignore[arg-type]
