"""The wire format of the OCR endpoint, as typed and tolerant pydantic models.

The client parses the service's answers with these models and the local server builds its
answers from them, so the two cannot drift apart. Every model keeps fields it does not know
(``model_extra``) instead of failing on them, and every field but a check's ``status`` and a
line's ``text`` is optional: the hosted API documents more than it promises.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "PAGE_SEPARATOR",
    "Glyph",
    "OCRPage",
    "OCRResult",
    "SubmitResponse",
    "TextLine",
]

PAGE_SEPARATOR = "\n\f"
"""Joins page texts in whole-document text: a form feed on a line of its own."""

Point = list[float]


class _WireModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Glyph(_WireModel):
    """A word or a character inside a text line (sent only by newer engine versions)."""

    text: str = ""
    confidence: float | None = None
    polygon: list[Point] | None = None
    bbox: list[float] | None = None
    bbox_valid: bool | None = None


class TextLine(_WireModel):
    """One OCR line: its text, its confidence (0..1) and where it stands on the page.

    ``bbox`` is ``[x0, y0, x1, y1]`` and ``polygon`` the four corners clockwise from top-left,
    in pixels of the rendered page image, origin top-left.
    """

    text: str
    confidence: float | None = None
    polygon: list[Point] | None = None
    bbox: list[float] | None = None
    chars: list[Glyph] | None = None
    words: list[Glyph] | None = None
    original_text_good: bool | None = None


class OCRPage(_WireModel):
    """One page of a result.

    ``page`` is the service's own page number, passed through as sent (most likely 1-based;
    its meaning with ``page_range`` is unconfirmed). ``page_index`` is the 0-based index of
    the page in the original document; the client always sets it from the pages it asked for.
    """

    page: int | None = None
    image_bbox: list[float] | None = None
    text_lines: list[TextLine] = Field(default_factory=list)
    languages: list[str] | None = None
    page_index: int | None = None

    @field_validator("text_lines", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @property
    def text(self) -> str:
        """The page's lines in the order the service returned them, one per line."""
        return "\n".join(line.text for line in self.text_lines)

    @property
    def mean_confidence(self) -> float | None:
        """The mean confidence of the lines that report one, or None when none do."""
        values = [line.confidence for line in self.text_lines if line.confidence is not None]
        return sum(values) / len(values) if values else None

    @property
    def width(self) -> float | None:
        """The width of the rendered page image in pixels, from ``image_bbox``."""
        box = self.image_bbox
        return box[2] - box[0] if box and len(box) == 4 else None

    @property
    def height(self) -> float | None:
        """The height of the rendered page image in pixels, from ``image_bbox``."""
        box = self.image_bbox
        return box[3] - box[1] if box and len(box) == 4 else None


class SubmitResponse(_WireModel):
    """The answer to ``POST /api/v1/ocr``: where to poll for the result."""

    request_id: str | None = None
    request_check_url: str | None = None
    success: bool | None = None
    error: str | None = None
    versions: dict[str, Any] | None = None


class OCRResult(_WireModel):
    """The answer to ``GET /api/v1/ocr/{request_id}``, and what ``ocr()`` returns.

    While the job runs only ``status`` is certain. A result returned by the client is
    complete and successful, carries its ``request_id``, and every page has ``page_index``.
    ``total_cost`` is passed through as reported (the unit is unconfirmed; probably cents).
    """

    status: str
    success: bool | None = None
    error: str | None = None
    pages: list[OCRPage] = Field(default_factory=list)
    page_count: int | None = None
    total_cost: float | None = None
    cost_breakdown: dict[str, Any] | None = None
    versions: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None

    @field_validator("pages", "versions", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any, info: Any) -> Any:
        if value is None:
            return [] if info.field_name == "pages" else {}
        return value

    @property
    def text(self) -> str:
        """The text of every page, joined by :data:`PAGE_SEPARATOR`."""
        return PAGE_SEPARATOR.join(page.text for page in self.pages)

    @property
    def cost(self) -> float | None:
        """The cost reported by the service (``total_cost``; unit unconfirmed)."""
        return self.total_cost
