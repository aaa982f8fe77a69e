"""The page_range option: parsing, validation and the compact text form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datalab_ocr import InvalidInputError, format_page_range, parse_page_range


@pytest.mark.parametrize(
    ("text", "pages"),
    [
        ("0", (0,)),
        ("0,2-4", (0, 2, 3, 4)),
        (" 4 , 0-1 ", (0, 1, 4)),
        ("3-3", (3,)),
        ("1,1,1-2", (1, 2)),
    ],
)
def test_text_forms_select_sorted_distinct_pages(text: str, pages: tuple[int, ...]) -> None:
    assert parse_page_range(text) == pages


def test_a_list_of_ints_is_accepted() -> None:
    assert parse_page_range([5, 0, 5, 2]) == (0, 2, 5)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("4-2", "runs backwards"),
        ("-1", "not a page or a range"),
        ("a", "not a page or a range"),
        ("1-", "not a page or a range"),
        ("1.5", "not a page or a range"),
        ("", "empty"),
        ("1,,2", "empty"),
        ([], "empty list"),
        ([-1], "cannot be negative"),
        ([True], "ints"),
        (["1"], "ints"),
        ("0-7000", "more than 7000"),
    ],
)
def test_bad_forms_are_refused_with_a_clear_message(value: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_page_range(value)  # type: ignore[arg-type]


def test_format_joins_runs_into_ranges() -> None:
    assert format_page_range([4, 0, 2, 3]) == "0,2-4"


@given(st.sets(st.integers(min_value=0, max_value=500), min_size=1, max_size=60))
def test_format_then_parse_gives_the_same_pages(pages: set[int]) -> None:
    assert parse_page_range(format_page_range(pages)) == tuple(sorted(pages))


@given(st.sets(st.integers(min_value=0, max_value=500), min_size=1, max_size=60))
def test_parse_then_format_is_stable(pages: set[int]) -> None:
    text = format_page_range(pages)
    assert format_page_range(parse_page_range(text)) == text
