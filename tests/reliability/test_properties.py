"""Properties over generated input: page selections survive the round trip to the local
server, and the response models take any extra field and lack any optional one, at every
level of nesting. (The page_range parse/format round trip is in tests/core.)"""

from __future__ import annotations

import asyncio
import json
import math
import random
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalab_ocr import AsyncDatalabClient, OCRResult, PollPolicy, RetryPolicy
from datalab_ocr.server import ServerConfig, create_app

from .conftest import tiny_pdf

DOCUMENT_PAGES = 30
PDF = tiny_pdf("selection.pdf", pages=DOCUMENT_PAGES)
page = st.integers(min_value=0, max_value=DOCUMENT_PAGES - 1)


@st.composite
def text_selections(draw: st.DrawFn) -> tuple[str, set[int]]:
    """A page range as a person writes it: "0, 2-4,7", in any order, spaces allowed."""
    parts: list[str] = []
    pages: set[int] = set()
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        start = draw(page)
        end = draw(st.integers(min_value=start, max_value=min(DOCUMENT_PAGES - 1, start + 5)))
        pages.update(range(start, end + 1))
        text = str(start) if start == end and draw(st.booleans()) else f"{start}-{end}"
        parts.append(draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", " "])))
    return ",".join(parts), pages


list_selections = st.lists(page, min_size=1, max_size=DOCUMENT_PAGES).map(
    lambda pages: (pages, set(pages))
)


async def ocr_on_the_local_server(selection: str | list[int]) -> OCRResult:
    app = create_app(ServerConfig(engine="none", cache_size=0))
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport) as http,
        AsyncDatalabClient(
            base_url="http://testserver",
            http_client=http,
            polling=PollPolicy(initial_delay=0.005, max_delay=0.01, timeout=10, adaptive=False),
            rate_limit=False,
            cache=False,
        ) as client,
    ):
        return await client.ocr(PDF, filename="selection.pdf", page_range=selection)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(text_selections(), list_selections))
def test_any_accepted_selection_comes_back_as_exactly_those_pages(
    selection: tuple[str | list[int], set[int]],
) -> None:
    given_form, wanted = selection

    result = asyncio.run(ocr_on_the_local_server(given_form))

    assert [p.page_index for p in result.pages] == sorted(wanted)
    assert [p.text for p in result.pages] == [f"Synthetic page {i + 1}" for i in sorted(wanted)]


# Models: every level tolerates extra fields and missing optional ones.

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=5,
)

GLYPH = {"confidence": 0.9, "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "bbox": [0, 0, 1, 1]}
GLYPH_FIELDS = {**GLYPH, "text": "w", "bbox_valid": True}
LINE_FIELDS = {**GLYPH, "original_text_good": True, "chars": [], "words": []}
PAGE_FIELDS = {"page": 1, "image_bbox": [0, 0, 10, 10], "languages": ["en"], "text_lines": []}
RESULT_FIELDS = {
    "success": True,
    "error": "",
    "page_count": 1,
    "total_cost": 1.0,
    "cost_breakdown": {},
    "versions": {},
    "request_id": "r",
    "pages": [],
}


def level(known: dict[str, Any], reserved: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Any subset of a level's optional fields, plus extra fields of any JSON value."""
    extra_keys = st.text(min_size=1, max_size=8).filter(lambda k: k not in reserved)
    return st.builds(
        lambda present, extra: {**{k: known[k] for k in present}, **extra},
        st.sets(st.sampled_from(sorted(known))),
        st.dictionaries(extra_keys, json_values, max_size=3),
    )


RESERVED = set(GLYPH_FIELDS) | set(LINE_FIELDS) | set(PAGE_FIELDS) | set(RESULT_FIELDS)
RESERVED |= {"status", "text", "page_index"}


@st.composite
def results(draw: st.DrawFn) -> dict[str, Any]:
    def words() -> list[dict[str, Any]]:
        return draw(st.lists(level(GLYPH_FIELDS, RESERVED), max_size=2))

    def line() -> dict[str, Any]:
        body = draw(level(LINE_FIELDS, RESERVED)) | {"text": "a line"}
        if "words" in body:
            body["words"] = words()
        if "chars" in body:
            body["chars"] = words()
        return body

    def one_page() -> dict[str, Any]:
        body = draw(level(PAGE_FIELDS, RESERVED))
        if "text_lines" in body:
            body["text_lines"] = [line() for _ in range(draw(st.integers(0, 2)))]
        return body

    body = draw(level(RESULT_FIELDS, RESERVED)) | {"status": "complete"}
    if "pages" in body:
        body["pages"] = [one_page() for _ in range(draw(st.integers(0, 2)))]
    return body


def extras(body: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in known and k not in {"status", "text"}}


@settings(max_examples=150, deadline=None)
@given(results())
def test_every_level_keeps_extra_fields_and_tolerates_missing_optional_ones(
    body: dict[str, Any],
) -> None:
    result = OCRResult.model_validate_json(json.dumps(body))

    assert result.model_extra == extras(body, RESULT_FIELDS)
    for parsed_page, raw_page in zip(result.pages, body.get("pages", []), strict=True):
        assert parsed_page.model_extra == extras(raw_page, PAGE_FIELDS)
        for parsed_line, raw_line in zip(
            parsed_page.text_lines, raw_page.get("text_lines", []), strict=True
        ):
            assert parsed_line.model_extra == extras(raw_line, LINE_FIELDS)
            assert parsed_line.text == "a line"
            for kind in ("words", "chars"):
                raw_glyphs = raw_line.get(kind)
                parsed = getattr(parsed_line, kind)
                assert (parsed is None) == (raw_glyphs is None)
                for parsed_glyph, raw_glyph in zip(parsed or [], raw_glyphs or [], strict=True):
                    assert parsed_glyph.model_extra == extras(raw_glyph, GLYPH_FIELDS)


# Waits stay finite and capped however long a job runs.


@given(
    step=st.integers(min_value=1, max_value=10**7),
    initial=st.floats(min_value=0, max_value=60),
    multiplier=st.floats(min_value=1, max_value=10),
    cap=st.floats(min_value=0, max_value=3600),
)
def test_every_poll_and_retry_wait_is_finite_and_capped(
    step: int, initial: float, multiplier: float, cap: float
) -> None:
    # A 1 s poll for a day is 86,400 polls; 1.5 ** 1,750 already overflows a float.
    rng = random.Random(step)
    poll = PollPolicy(initial_delay=initial, multiplier=multiplier, max_delay=cap)
    retry = RetryPolicy(initial_delay=initial, multiplier=multiplier, max_delay=cap)

    for wait, bound in ((poll.delay(step, rng), cap * 1.1), (retry.delay(step, None, rng), cap)):
        assert math.isfinite(wait)
        assert 0 <= wait <= bound + 1e-9
