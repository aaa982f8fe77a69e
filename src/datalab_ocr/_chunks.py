"""The splitting core both splitters share: text cut into chunks by size, along OCR lines.

A page record's text is its OCR lines joined by newlines (pages joined by
``PAGE_SEPARATOR`` in file mode), and its line map (:mod:`._geometry`) says where each line
stands on its page. Chunks are runs of whole lines, so every chunk knows its lines and
their boxes: ``bboxes`` is the union of those boxes on each page the chunk touches. A line
longer than a chunk is cut at spaces (or, for one long word, anywhere), and each piece keeps
the whole line's box: text is never separated from where it stands.

Sizes are measured by ``length`` (characters by default, or tokens through a tokenizer).
Like the frameworks' own splitters, a chunk's size is the sum of its lines' and their
joins' sizes; with a tokenizer the chunk is measured once more as a whole and shortened if
tokens that merge across a join pushed it past the limit.

A document without a line map (another loader's, or text edited since OCR) is split the
same way along its newlines, with no ``bboxes``.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._geometry import (
    BBOXES_COMPLETE_KEY,
    BBOXES_KEY,
    LINE_BBOXES_KEY,
    LINE_MAP_KEY,
    GeometryError,
    LineMap,
    PageSpan,
    decode_line_map,
    encode_bboxes,
    union_by_page,
)

__all__ = [
    "CHUNK_KEYS",
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_SIZE",
    "Chunk",
    "ChunkSettings",
    "line_map_of",
    "split",
]

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 1000
"""Default chunk size (characters, or tokens with a tokenizer)."""

DEFAULT_CHUNK_OVERLAP = 200
"""Default overlap between neighbouring chunks, in the same unit."""

CHUNK_KEYS = (BBOXES_KEY, LINE_BBOXES_KEY, BBOXES_COMPLETE_KEY)
"""Metadata keys the splitters add: kept out of embeddings and prompts."""

Length = Callable[[str], int]

_WORD = re.compile(r"\S+\s*")


@dataclass(frozen=True, slots=True)
class ChunkSettings:
    """How big chunks are and how much neighbours share; checked when built."""

    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    length: Length = len
    line_boxes: bool = False

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, not {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError(
                f"chunk_overlap must be at least 0 and less than chunk_size "
                f"({self.chunk_size}), not {self.chunk_overlap}"
            )


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk: ``text`` is exactly ``document_text[start:end]``.

    ``spans`` are the lines' boxes (one per line that has one) and ``complete`` says whether
    every line with text had one; both are ``None`` for a document without a line map.
    """

    text: str
    start: int
    end: int
    spans: tuple[PageSpan, ...] | None
    complete: bool | None

    def metadata(self, line_boxes: bool = False) -> dict[str, str | bool]:
        """The metadata this chunk adds: ``bboxes`` and ``bboxes_complete`` (and
        ``line_bboxes`` when asked), or nothing without a line map."""
        if self.spans is None or self.complete is None:
            return {}
        metadata: dict[str, str | bool] = {
            BBOXES_KEY: encode_bboxes(union_by_page(self.spans)),
            BBOXES_COMPLETE_KEY: self.complete,
        }
        if line_boxes:
            metadata[LINE_BBOXES_KEY] = encode_bboxes(self.spans)
        return metadata


@dataclass(frozen=True, slots=True)
class _Unit:
    """A piece of text that is never cut further: a line, or a piece of a long line."""

    start: int
    end: int
    span: PageSpan | None
    blank: bool


def line_map_of(text: str, metadata: Mapping[str, Any], warned: set[str]) -> LineMap | None:
    """The line map a document carries, if it is one of ours and fits its text.

    Logs a warning once per reason (``warned`` remembers them) when there is none, or one
    that does not fit: the document's chunks then have no ``bboxes``.
    """
    value = metadata.get(LINE_MAP_KEY)
    reason = None
    line_map = None
    if value is None:
        reason = (
            f"documents without {LINE_MAP_KEY!r} metadata (not from datalab-ocr's reader or "
            "loader) are split without bboxes"
        )
    elif not isinstance(value, str):
        reason = f"{LINE_MAP_KEY!r} is not a string; those documents are split without bboxes"
    else:
        try:
            line_map = decode_line_map(value)
        except GeometryError as error:
            reason = f"an unreadable {LINE_MAP_KEY!r} ({error}); split without bboxes"
        else:
            if not line_map.matches(text) or (
                line_map.lines and line_map.lines[-1].end > len(text)
            ):
                line_map = None
                reason = "documents whose text changed after OCR are split without bboxes"
    if reason is not None and reason not in warned:
        warned.add(reason)
        logger.warning("%s", reason)
    return line_map


def split(text: str, line_map: LineMap | None, settings: ChunkSettings) -> list[Chunk]:
    """Cut ``text`` into chunks of whole lines (pieces of lines only for lines too long)."""
    units = _units(text, line_map, settings)
    if not units:
        return []
    length = settings.length
    sizes = [length(text[unit.start : unit.end]) for unit in units]
    gaps: dict[str, int] = {}  # joins are nearly all "\n": measure each kind once
    joins = [0]
    for previous, unit in itertools.pairwise(units):
        gap = text[previous.end : unit.start]
        if gap not in gaps:
            gaps[gap] = length(gap)
        joins.append(gaps[gap])
    chunks: list[Chunk] = []
    first = 0
    while first < len(units):
        last, total = first, sizes[first]
        while (
            last + 1 < len(units)
            and total + joins[last + 1] + sizes[last + 1] <= settings.chunk_size
        ):
            last += 1
            total += joins[last] + sizes[last]
        # Sizes that do not add up (tokens merging across a join): measure the whole chunk.
        while (
            last > first
            and length(text[units[first].start : units[last].end]) > settings.chunk_size
        ):
            last -= 1
        chunks.append(_chunk(text, units[first : last + 1], line_map is not None))
        if last + 1 >= len(units):
            break
        first = _overlap_start(first, last, sizes, joins, settings)
    return chunks


def _overlap_start(
    first: int, last: int, sizes: list[int], joins: list[int], settings: ChunkSettings
) -> int:
    """Where the next chunk starts: the last lines of this one that fit in the overlap and
    leave room for the next line, so every chunk brings new text; always moving forward."""
    following = joins[last + 1] + sizes[last + 1]
    start, total = last + 1, 0
    while start - 1 > first:
        extra = sizes[start - 1] + (joins[start] if start <= last else 0)
        if total + extra > settings.chunk_overlap or (
            total + extra + following > settings.chunk_size
        ):
            break
        total += extra
        start -= 1
    return start


def _chunk(text: str, units: list[_Unit], mapped: bool) -> Chunk:
    start, end = units[0].start, units[-1].end
    if not mapped:
        return Chunk(text[start:end], start, end, None, None)
    spans: list[PageSpan] = []
    complete = True
    for unit in units:
        if unit.blank:
            continue
        if unit.span is None:
            complete = False
        elif not spans or spans[-1] != unit.span:  # pieces of one line share its box
            spans.append(unit.span)
    return Chunk(text[start:end], start, end, tuple(spans), complete)


def _units(text: str, line_map: LineMap | None, settings: ChunkSettings) -> list[_Unit]:
    if line_map is not None:
        lines = [(line.start, line.end, line.span) for line in line_map.lines]
    else:
        lines = []
        offset = 0
        for piece in text.split("\n"):
            lines.append((offset, offset + len(piece), None))
            offset += len(piece) + 1
    units: list[_Unit] = []
    for start, end, span in lines:
        blank = not text[start:end].strip()
        if blank and line_map is None:
            continue  # blank lines of plain text carry nothing to cite
        if settings.length(text[start:end]) <= settings.chunk_size:
            units.append(_Unit(start, end, span, blank))
        else:
            units.extend(_Unit(a, b, span, False) for a, b in _cut(text, start, end, settings))
    return units


def _cut(text: str, start: int, end: int, settings: ChunkSettings) -> list[tuple[int, int]]:
    """A line too long for one chunk, cut after spaces into pieces that fit."""
    pieces: list[tuple[int, int]] = []
    piece_start = piece_end = start
    for word in _WORD.finditer(text, start, end):
        if settings.length(text[piece_start : word.end()]) <= settings.chunk_size:
            piece_end = word.end()
            continue
        if piece_end > piece_start:
            pieces.append((piece_start, piece_end))
            piece_start = piece_end
        # A word longer than a chunk: cut it where it must be cut.
        while settings.length(text[piece_start : word.end()]) > settings.chunk_size:
            cut = _longest_fit(text, piece_start, word.end(), settings)
            pieces.append((piece_start, cut))
            piece_start = cut
        piece_end = word.end()
    if piece_end > piece_start:
        pieces.append((piece_start, piece_end))
    return pieces


def _longest_fit(text: str, start: int, end: int, settings: ChunkSettings) -> int:
    """The end of the longest ``text[start:cut]`` that fits in a chunk (at least one
    character, so the cut always moves on)."""
    low, high = start + 1, end
    while low < high:
        middle = (low + high + 1) // 2
        if settings.length(text[start:middle]) <= settings.chunk_size:
            low = middle
        else:
            high = middle - 1
    return low
