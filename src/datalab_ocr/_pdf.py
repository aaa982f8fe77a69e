"""Cheap looks inside a PDF before it is uploaded: is it whole, and how many pages has it.

Neither needs a PDF parser. A PDF ends with an ``%%EOF`` marker (one per revision when it was
updated in place); a download cut short loses the last one. Pages are
counted as page objects (``/Type /Page``). That count is never too low, which is what a
refusal needs: a page rewritten by an update counts twice, but none is missed, unless the
file keeps objects in compressed object streams (PDF 1.5+), where they cannot be seen without
inflating them; then the count is unknown rather than guessed.
"""

from __future__ import annotations

import re

__all__ = ["TAIL_BYTES", "PageCounter", "truncation_problem"]

TAIL_BYTES = 64 * 1024
"""How far from the end ``%%EOF`` is looked for. Readers find it past padding and junk that
some writers and mail gateways append (tens of kilobytes of NULs, in files seen in the wild)."""

_EOF = b"%%EOF"
# What an update appended after an earlier %%EOF starts with; no complete file has any of it
# after its last marker.
_STRUCTURE = re.compile(rb"\d+\s+\d+\s+obj\b|endobj|\bxref\b|trailer|startxref")
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_OBJECT_STREAM = re.compile(rb"/Type\s*/ObjStm")
_OVERLAP = 16


def truncation_problem(tail: bytes) -> str | None:
    """Why a PDF whose last :data:`TAIL_BYTES` bytes are ``tail`` looks cut short, or None.

    Cut short means either no ``%%EOF`` near the end, or PDF objects after the last one: a
    file with incremental updates (edits, signatures, annotations) has an ``%%EOF`` per
    revision, and a copy cut inside the last update ends with part of it.

    The ``startxref`` offset is not checked: among about a thousand public test PDFs that
    readers open, several point it past their own end or at the wrong byte, and readers
    repair that by scanning, so refusing them would refuse files the service reads.
    """
    marker = tail.rfind(_EOF)
    if marker < 0:
        return (
            f"has no end-of-file marker (%%EOF) in its last {len(tail)} bytes: it looks "
            f"truncated, like a download or copy cut short; fetch it again"
        )
    if _STRUCTURE.search(tail, marker + len(_EOF)):
        return (
            "ends inside an update written after its last end-of-file marker (%%EOF): it "
            "looks truncated, like a download or copy cut short; fetch it again"
        )
    return None


class PageCounter:
    """Counts page objects over a PDF read in chunks; :attr:`pages` is None when unknown."""

    def __init__(self) -> None:
        self._count = 0
        self._tail = b""
        self._object_streams = False

    def feed(self, chunk: bytes) -> None:
        """Count the page objects in the next chunk of the file."""
        data = self._tail + chunk
        self._count += len(_PAGE.findall(data))
        self._object_streams = self._object_streams or bool(_OBJECT_STREAM.search(data))
        # Keep a short tail so a marker split across chunks is still seen; one wholly inside
        # the tail was counted already, so drop it then.
        self._tail = data[-_OVERLAP:]
        if _PAGE.search(self._tail):
            self._tail = b""

    @property
    def hint(self) -> int:
        """A guess for timing polls: the page objects seen, at least 1."""
        return max(1, self._count)

    @property
    def pages(self) -> int | None:
        """The page count, or None when object streams may hide page objects."""
        if self._object_streams or self._count == 0:
            return None
        return self._count
