"""The wire models: tolerant of what the service may add or leave out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datalab_ocr import PAGE_SEPARATOR, OCRPage, OCRResult, SubmitResponse, TextLine

# Copies of the example payloads printed in the vendor's documentation.
SAMPLES = Path(__file__).parents[1] / "fixtures"


def test_the_documented_result_sample_parses() -> None:
    sample = SAMPLES / "ocr_result_docs_example.json"
    result = OCRResult.model_validate_json(sample.read_bytes())

    line = result.pages[0].text_lines[0]
    assert line.text == "Subspace Adversarial Training"
    assert line.bbox == [267.0, 139.0, 525.0, 159.0]
    assert result.pages[0].languages == ["en"]
    assert result.page_count == 5


def test_the_documented_submit_sample_parses() -> None:
    sample = SAMPLES / "ocr_submit_docs_example.json"
    answer = SubmitResponse.model_validate_json(sample.read_bytes())

    assert answer.request_id == "PpK1oM-HB4RgrhsQhVb2uQ"


def test_a_processing_answer_needs_only_a_status() -> None:
    result = OCRResult.model_validate({"status": "processing", "pages": None, "versions": None})

    assert (result.pages, result.versions) == ([], {})


def test_unknown_fields_are_kept() -> None:
    result = OCRResult.model_validate(
        {"status": "complete", "new_thing": 1, "pages": [{"page": 1, "blocks": [1, 2]}]}
    )

    assert result.model_extra == {"new_thing": 1}
    assert result.pages[0].model_extra == {"blocks": [1, 2]}


def test_newer_engines_words_and_chars_are_typed() -> None:
    glyph = {"text": "a", "confidence": 0.5, "bbox": [0, 0, 1, 1], "bbox_valid": True}
    line = TextLine.model_validate({"text": "a", "words": [glyph], "chars": [glyph]})

    assert line.words is not None and line.words[0].bbox_valid is True


def test_page_text_width_height_and_confidence() -> None:
    page = OCRPage.model_validate(
        {
            "image_bbox": [0, 0, 800, 1000],
            "text_lines": [{"text": "a", "confidence": 0.5}, {"text": "b", "confidence": 1.0}],
        }
    )

    assert (page.text, page.width, page.height, page.mean_confidence) == ("a\nb", 800, 1000, 0.75)


def test_document_text_joins_pages_with_the_separator() -> None:
    result = OCRResult.model_validate(
        {"status": "complete", "pages": [{"text_lines": [{"text": "a"}]}, {"text_lines": []}]}
    )

    assert result.text == "a" + PAGE_SEPARATOR


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
optional_fields = [
    "success",
    "error",
    "pages",
    "page_count",
    "total_cost",
    "cost_breakdown",
    "versions",
]


@given(
    extra=st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda k: k not in [*optional_fields, "status"]),
        json_values,
        max_size=4,
    ),
    present=st.sets(st.sampled_from(optional_fields)),
)
def test_any_extra_field_and_any_missing_optional_field_is_accepted(
    extra: dict[str, Any], present: set[str]
) -> None:
    full: dict[str, Any] = {
        "success": True,
        "error": None,
        "pages": [{"page": 1, "text_lines": [{"text": "x"}]}],
        "page_count": 1,
        "total_cost": 2.5,
        "cost_breakdown": {"ocr": 2.5},
        "versions": {"surya": "1"},
    }
    body = {"status": "complete", **{k: full[k] for k in present}, **extra}

    result = OCRResult.model_validate_json(json.dumps(body))

    assert result.model_extra == extra
